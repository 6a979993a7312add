"""One RabbitMQ user per service, each allowed only its own part of the bus.

Against the real broker, with the platform's definitions imported into a virtual host of the
test's own (``broker_users``): every service user can do what its process does, and is refused
(ACCESS_REFUSED, 403) what belongs to another: above all, only the signing tier's user may
publish a signing answer, and no service user may declare or delete anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika
import pika.exceptions
import pytest

from meterai_common.messaging import (
    DEAD_LETTERS_QUEUE,
    EVENTS_EXCHANGE,
    SIGNING_QUEUE,
    STAMPING_EVENTS,
    WEBHOOK_EVENTS,
    PikaPublisher,
    PublishError,
    TopologyMissing,
    ensure_topology_at,
)
from tests.support.brokers import BrokerUsers

ACCESS_REFUSED = 403


@contextmanager
def _channel(url: str) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        yield channel
    finally:
        if connection.is_open:
            connection.close()


def _publish(url: str, exchange: str, routing_key: str) -> None:
    with _channel(url) as channel:
        channel.basic_publish(exchange, routing_key, b"x", mandatory=False)


def _refused(action: Any) -> int:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as error:
        action()
    return int(error.value.reply_code)


@pytest.mark.parametrize(
    ("service", "routing_key"),
    [
        ("quota", "QuotaCredited"),
        ("stamping", "DocumentStamped"),
        ("finishing", "StampFailed"),
        ("signing", "DigestSigned"),
        ("signing", "SigningFailed"),
    ],
)
def test_each_service_publishes_its_own_events(
    broker_users: BrokerUsers, service: str, routing_key: str
) -> None:
    publisher = PikaPublisher(broker_users.urls[service])
    try:
        publisher.publish(routing_key, b"event", message_id=f"m-{routing_key}")
    finally:
        publisher.close()


@pytest.mark.parametrize(
    ("service", "routing_key"),
    [
        ("stamping", "DigestSigned"),
        ("finishing", "DigestSigned"),
        ("quota", "DigestSigned"),
        ("quota", "DocumentStamped"),
        ("signing", "DocumentStamped"),
        ("signing", "QuotaCredited"),
        ("admin", "DigestSigned"),
        ("webhooks", "DocumentStamped"),
        ("webhooks", "StampFailed"),
    ],
)
def test_no_service_publishes_another_services_events(
    broker_users: BrokerUsers, service: str, routing_key: str
) -> None:
    url = broker_users.urls[service]
    assert _refused(lambda: _publish(url, EVENTS_EXCHANGE, routing_key)) == ACCESS_REFUSED
    publisher = PikaPublisher(url)
    try:
        with pytest.raises(PublishError):
            publisher.publish(routing_key, b"forged", message_id="forged")
    finally:
        publisher.close()


def test_only_the_stamping_tier_puts_tasks_on_the_signing_queue(
    broker_users: BrokerUsers,
) -> None:
    """(Signing workers may too: a retry with backoff goes back into their own queue. The
    worker signs only committed jobs whatever the queue holds.)"""
    _publish(broker_users.urls["stamping"], SIGNING_QUEUE, SIGNING_QUEUE)
    _publish(broker_users.urls["finishing"], SIGNING_QUEUE, SIGNING_QUEUE)
    for service in ("quota",):
        url = broker_users.urls[service]
        refused = _refused(lambda url=url: _publish(url, SIGNING_QUEUE, SIGNING_QUEUE))
        assert refused == ACCESS_REFUSED, service


@pytest.mark.parametrize(
    ("queue", "readers"),
    [
        (SIGNING_QUEUE, {"signing", "admin"}),
        (STAMPING_EVENTS.name, {"stamping", "finishing", "admin"}),
        (DEAD_LETTERS_QUEUE, {"stamping", "finishing", "admin"}),
        (WEBHOOK_EVENTS.name, {"webhooks", "admin"}),
    ],
)
def test_each_queue_is_read_only_by_its_consumers(
    broker_users: BrokerUsers, queue: str, readers: set[str]
) -> None:
    for service, url in broker_users.urls.items():
        with _channel(url) as channel:
            if service in readers:
                channel.basic_get(queue, auto_ack=False)
            else:
                refused = _refused(lambda ch=channel: ch.basic_get(queue, auto_ack=False))
                assert refused == ACCESS_REFUSED, service


@pytest.mark.parametrize("service", ["quota", "stamping", "finishing", "signing", "webhooks"])
def test_no_service_user_may_declare_or_delete_anything(
    broker_users: BrokerUsers, service: str
) -> None:
    url = broker_users.urls[service]
    with _channel(url) as channel:
        assert _refused(lambda: channel.queue_delete(SIGNING_QUEUE)) == ACCESS_REFUSED
    with _channel(url) as channel:
        assert _refused(lambda: channel.queue_declare("rogue", durable=True)) == ACCESS_REFUSED
    with _channel(url) as channel:
        assert _refused(lambda: channel.exchange_delete(EVENTS_EXCHANGE)) == ACCESS_REFUSED
    # ... yet finds the imported topology, passively, and goes on.
    ensure_topology_at(url)


def test_a_service_user_on_a_broker_without_the_topology_is_told_what_to_import(
    broker_users: BrokerUsers,
) -> None:
    with _channel(broker_users.urls["admin"]) as channel:
        channel.queue_delete(STAMPING_EVENTS.name)
    with pytest.raises(TopologyMissing, match=r"definitions\.json"):
        ensure_topology_at(broker_users.urls["stamping"])
    ensure_topology_at(broker_users.urls["admin"])  # the operator may declare it again
    ensure_topology_at(broker_users.urls["stamping"])
