"""Clients given several broker addresses use the first one that answers: an address whose
node is down costs a refused connection, not a failed publish (pika and Celery/kombu alike)."""

from __future__ import annotations

from meterai_common.messaging import PikaPublisher, ensure_topology_at
from meterai_common.tasks import SIGN_DIGEST_TASK, CeleryTaskSender, make_celery
from tests.support.brokers import dead_address


def test_events_are_published_through_whichever_listed_node_answers(amqp_url: str) -> None:
    cluster = f"{dead_address(amqp_url)};{amqp_url};{dead_address(amqp_url)}"
    # pika tries the addresses in random order: three publishers meet the dead ones first
    # in all but one case in 27.
    for attempt in range(3):
        publisher = PikaPublisher(cluster)
        try:
            publisher.publish("DocumentStamped", b"event", message_id=f"failover-{attempt}")
        finally:
            publisher.close()


def test_sign_tasks_fail_over_to_the_next_listed_node(amqp_url: str) -> None:
    cluster = f"{dead_address(amqp_url)};{amqp_url}"
    ensure_topology_at(cluster)
    app = make_celery(cluster)
    app.conf.broker_connection_timeout = 5
    CeleryTaskSender(app).send(
        SIGN_DIGEST_TASK, {"job_id": "failover", "serial": "0", "digest": "0"}
    )
