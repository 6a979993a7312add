"""A broker URL may name every node of a RabbitMQ cluster; pika gets one set of connection
parameters per node, each with the platform's heartbeat and timeouts."""

from __future__ import annotations

import pytest

from meterai_common.messaging import HEARTBEAT_S, _parameters, broker_addresses

CLUSTER = "amqp://u:p@127.0.0.1:5701/v;amqp://u:p@127.0.0.1:5702/v;amqp://u:p@127.0.0.1:5703/v"


def test_a_single_url_is_one_address() -> None:
    assert broker_addresses("amqp://u:p@broker/v") == ["amqp://u:p@broker/v"]


def test_semicolons_separate_the_nodes_of_a_cluster() -> None:
    assert [a.split("@")[1] for a in broker_addresses(CLUSTER + ";")] == [
        "127.0.0.1:5701/v",
        "127.0.0.1:5702/v",
        "127.0.0.1:5703/v",
    ]


def test_an_empty_url_is_refused() -> None:
    with pytest.raises(ValueError, match="names no broker"):
        broker_addresses(" ; ")


def test_pika_tries_every_node_once_each_with_the_platform_timeouts() -> None:
    parameters = _parameters(CLUSTER)
    assert sorted(p.port for p in parameters) == [5701, 5702, 5703]
    for p in parameters:
        assert (p.heartbeat, p.connection_attempts, p.virtual_host) == (HEARTBEAT_S, 1, "v")
