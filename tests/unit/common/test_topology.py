"""The committed RabbitMQ definitions are exactly what the services declare."""

from __future__ import annotations

import json
from pathlib import Path

from meterai_common.broker_users import user_definitions
from meterai_common.messaging import (
    SIGNING_QUEUE,
    STAMPING_EVENTS,
    quorum_arguments,
    topology_definitions,
)

DEFINITIONS = Path(__file__).resolve().parents[3] / "deploy" / "rabbitmq" / "definitions.json"


def test_deploy_definitions_match_the_code() -> None:
    committed = json.loads(DEFINITIONS.read_text())
    expected = {**user_definitions(), **topology_definitions()}
    assert committed == expected, "run: meterai admin topology --users > " + str(DEFINITIONS)


def test_work_queues_are_quorum_with_a_delivery_limit_and_safe_dead_lettering() -> None:
    arguments = quorum_arguments()
    assert arguments["x-queue-type"] == "quorum"
    assert arguments["x-delivery-limit"] > 0
    assert arguments["x-dead-letter-strategy"] == "at-least-once"
    assert arguments["x-overflow"] == "reject-publish"
    queues = {q["name"]: q for q in topology_definitions()["queues"]}
    for name in (SIGNING_QUEUE, STAMPING_EVENTS.name):
        assert queues[name]["arguments"] == arguments
