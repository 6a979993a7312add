"""Domain events over real RabbitMQ: confirmed publishes, acks after the handler, redelivery
when it fails, reconnection when the broker drops the connection, and the outbox relay."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from meterai.events.v1 import events_pb2
from meterai_common.db import create_engine, transaction
from meterai_common.messaging import STAMPING_EVENTS, PikaConsumer, PikaPublisher
from meterai_common.outbox import OutboxRelay, enqueue_event, oldest_pending_age
from meterai_common.runtime import BrokerTransport
from tests.support.brokers import rabbitmqctl


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class Inbox:
    def __init__(self, failures: int = 0) -> None:
        self.received: list[tuple[str, bytes, str]] = []
        self.failures = failures
        self.lock = threading.Lock()

    def __call__(self, routing_key: str, body: bytes, message_id: str) -> None:
        with self.lock:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("handler not ready yet")
            self.received.append((routing_key, body, message_id))


@pytest.fixture
def consumer(amqp_url: str) -> Iterator[Callable[[Inbox], PikaConsumer]]:
    started: list[PikaConsumer] = []

    def start(inbox: Inbox) -> PikaConsumer:
        consumer = PikaConsumer(amqp_url, STAMPING_EVENTS, inbox)
        consumer.start()
        assert consumer.connected.wait(20), "consumer did not connect"
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.stop()


def _signed(job_id: str) -> bytes:
    return events_pb2.DigestSigned(job_id=job_id, serial="S" * 22, cms=b"cms").SerializeToString()


def test_a_confirmed_event_reaches_the_consumer(
    amqp_url: str, consumer: Callable[[Inbox], PikaConsumer]
) -> None:
    inbox = Inbox()
    consumer(inbox)
    publisher = PikaPublisher(amqp_url)
    publisher.publish("DigestSigned", _signed("job-a"), message_id="m-a")
    publisher.close()
    _wait(lambda: any(m[2] == "m-a" for m in inbox.received))
    routing_key, body, _ = next(m for m in inbox.received if m[2] == "m-a")
    assert routing_key == "DigestSigned"
    assert events_pb2.DigestSigned.FromString(body).job_id == "job-a"


def test_a_failing_handler_gets_the_message_again_until_it_succeeds(
    amqp_url: str, consumer: Callable[[Inbox], PikaConsumer]
) -> None:
    inbox = Inbox(failures=2)
    consumer(inbox)
    publisher = PikaPublisher(amqp_url)
    publisher.publish("SigningFailed", b"", message_id="m-retry")
    publisher.close()
    _wait(lambda: any(m[2] == "m-retry" for m in inbox.received))
    assert inbox.failures == 0


def test_consumer_and_publisher_survive_the_broker_dropping_connections(
    amqp_url: str, consumer: Callable[[Inbox], PikaConsumer]
) -> None:
    inbox = Inbox()
    consumer(inbox)
    publisher = PikaPublisher(amqp_url)
    publisher.publish("DigestSigned", _signed("before"), message_id="m-before")
    _wait(lambda: any(m[2] == "m-before" for m in inbox.received))
    vhost = amqp_url.rsplit("/", 1)[1]
    rabbitmqctl("close_all_connections", "-p", vhost, "fault test")
    publisher.publish("DigestSigned", _signed("after"), message_id="m-after")
    publisher.close()
    _wait(lambda: any(m[2] == "m-after" for m in inbox.received), timeout=30)


def test_outbox_rows_are_published_once_committed_and_marked(
    amqp_url: str, postgres_url: str, consumer: Callable[[Inbox], PikaConsumer]
) -> None:
    inbox = Inbox()
    consumer(inbox)
    engine = create_engine(postgres_url)
    transport = BrokerTransport(amqp_url)
    relay = OutboxRelay(engine, transport.dispatch, poll_interval=0.05)
    with transaction(engine) as conn:
        ids = [
            enqueue_event(conn, "DigestSigned", _signed(f"job-{i}"), datetime.now(UTC))
            for i in range(20)
        ]
    relay.start()
    try:
        _wait(lambda: {m[2] for m in inbox.received} >= set(ids))
        _wait(lambda: relay.pending() == 0)
    finally:
        relay.stop()
        transport.stop()
        engine.dispose()


def test_outbox_keeps_rows_while_the_broker_is_unreachable(postgres_url: str) -> None:
    """...and any process sees how long the oldest has waited (what admission refuses on)."""
    engine = create_engine(postgres_url)
    transport = BrokerTransport("amqp://guest:guest@127.0.0.1:1/%2F")
    relay = OutboxRelay(engine, transport.dispatch)
    try:
        with transaction(engine) as conn:
            written = datetime.now(UTC) - timedelta(seconds=30)
            enqueue_event(conn, "DigestSigned", _signed("kept"), written)
        before = relay.pending()
        assert relay.run_once() == 0
        assert relay.pending() == before >= 1
        assert oldest_pending_age(engine) >= 30
    finally:
        transport.stop()
        with transaction(engine) as conn:
            conn.exec_driver_sql("DELETE FROM outbox WHERE published_at IS NULL")
        engine.dispose()
