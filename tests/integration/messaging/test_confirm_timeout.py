"""A publish whose confirm never comes is bounded: the publisher gives its connection up after
its confirm timeout and publishes again on a new one, instead of waiting without end (with the
outbox's rows locked behind it). The broker may then hold the message twice; consumers take
it once, by message id."""

from __future__ import annotations

import time

import pika

from meterai_common.messaging import EVENTS_EXCHANGE, PikaPublisher
from tests.support.tcp_proxy import AmqpProxy

TIMEOUT_S = 2.0


def test_a_withheld_confirm_is_given_up_after_the_bound_and_the_event_published_again(
    topology_vhost: tuple[str, pika.BlockingConnection],
) -> None:
    url, connection = topology_vhost
    channel = connection.channel()
    channel.queue_declare("confirm-probe", durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind("confirm-probe", EVENTS_EXCHANGE, routing_key="ProbeConfirmed")
    proxy = AmqpProxy(("127.0.0.1", 5672))
    publisher = PikaPublisher(proxy.url(url), confirm_timeout_s=TIMEOUT_S)
    try:
        publisher.publish("ProbeConfirmed", b"first", message_id="probe-first")
        proxy.withhold_next_confirm()
        started = time.monotonic()
        publisher.publish("ProbeConfirmed", b"second", message_id="probe-second")
        waited = time.monotonic() - started
    finally:
        publisher.close()
        proxy.close()
    assert [w.body for w in proxy.withheld] == [b"second"]
    assert TIMEOUT_S <= waited < TIMEOUT_S + 5, waited
    assert b"second" in proxy.published_after(proxy.withheld[0])
    ids = []
    while True:
        method, properties, _body = channel.basic_get("confirm-probe", auto_ack=True)
        if method is None:
            break
        ids.append(properties.message_id)
    # The withheld one reached the broker, and so did its second publish: a duplicate.
    assert ids == ["probe-first", "probe-second", "probe-second"]
