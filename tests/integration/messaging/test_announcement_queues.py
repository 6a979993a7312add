"""Announcement queues are bounded and never refuse a publisher: with no reader (the webhook
dispatcher stopped, or never started) the oldest announcements make room for new ones, and
the stamping outbox keeps publishing, because a refused ``DocumentStamped`` would hold up
every sign request behind it."""

from __future__ import annotations

import pika
import pytest

from meterai_common.messaging import (
    EVENTS_EXCHANGE,
    WEBHOOK_EVENTS,
    PikaPublisher,
    announcement_arguments,
    quorum_arguments,
)


def test_a_full_announcement_queue_drops_its_oldest_and_confirms_the_publisher(
    topology_vhost: tuple[str, pika.BlockingConnection],
) -> None:
    url, connection = topology_vhost
    channel = connection.channel()
    channel.queue_declare("announce-probe", durable=True, arguments=announcement_arguments(3))
    channel.queue_bind("announce-probe", EVENTS_EXCHANGE, routing_key="ProbeAnnounced")
    publisher = PikaPublisher(url)
    try:
        for n in range(5):  # each returns only once the broker confirmed it
            publisher.publish("ProbeAnnounced", str(n).encode(), message_id=f"probe-{n}")
    finally:
        publisher.close()
    kept = []
    while True:
        method, _properties, body = channel.basic_get("announce-probe", auto_ack=True)
        if method is None:
            break
        kept.append(body)
    assert kept == [b"2", b"3", b"4"]


def test_the_webhook_events_queue_is_declared_bounded(
    topology_vhost: tuple[str, pika.BlockingConnection],
) -> None:
    """The broker accepts a re-declaration only with the arguments the queue has: the bounded
    ones, not a work queue's (which refuse publishers when full)."""
    _url, connection = topology_vhost
    connection.channel().queue_declare(
        WEBHOOK_EVENTS.name, durable=True, arguments=announcement_arguments()
    )
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        connection.channel().queue_declare(
            WEBHOOK_EVENTS.name, durable=True, arguments=quorum_arguments()
        )
    assert refused.value.reply_code == 406
