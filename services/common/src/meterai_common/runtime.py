"""Pieces every service process wires the same way: the message transport and periodic chores.

A transport is either RabbitMQ (Celery for tasks, pika for events) or the in-process bus of
the embedded platform. Services receive one and never ask which it is.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.trace import SpanKind

from meterai_common import tracing
from meterai_common.broadcast import BroadcastConsumer
from meterai_common.bus import InProcessBus
from meterai_common.messaging import (
    Handler,
    PikaConsumer,
    PikaPublisher,
    QueueSpec,
    ensure_topology_at,
)
from meterai_common.outages import is_database_outage
from meterai_common.outbox import OutboxMessage
from meterai_common.tasks import SIGN_DIGEST_TASK, SIGN_DIGESTS_TASK, CeleryTaskSender, make_celery

__all__ = [
    "BrokerTransport",
    "InProcessTransport",
    "Periodic",
    "Stoppable",
    "Transport",
    "stop_all",
]

log = logging.getLogger(__name__)


class Transport(Protocol):
    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None: ...
    def send(self, task_name: str, kwargs: dict[str, Any]) -> None: ...
    def subscribe(self, spec: QueueSpec, handler: Handler, *, consumers: int = 1) -> None: ...
    def broadcast_to(self, routing_keys: Sequence[str], handler: Handler) -> None: ...
    def dispatch(self, message: OutboxMessage) -> None: ...
    def dispatch_many(self, messages: Sequence[OutboxMessage]) -> None: ...
    def stop(self) -> None: ...


class _Dispatch:
    def dispatch(self, message: OutboxMessage) -> None:
        """Publish one outbox row: a task to the signing queue or an event to the exchange."""
        if message.kind == "task":
            self.send(message.name, message.task_kwargs())
        else:
            self.publish(message.name, message.payload, message_id=message.message_id)

    def dispatch_many(self, messages: Sequence[OutboxMessage]) -> None:
        """Publish outbox rows of one name together: sign requests as one batch task (one
        message, one confirm), anything else one by one."""
        if all(m.kind == "task" and m.name == SIGN_DIGEST_TASK for m in messages):
            items = [m.task_kwargs() for m in messages]
            jobs = [
                (item.get("trace"), {"meterai.job_id": str(item.get("job_id"))}) for item in items
            ]
            with tracing.spans_for("outbox publish sign", jobs, kind=SpanKind.PRODUCER):
                self.send(SIGN_DIGESTS_TASK, {"items": items})
            return
        for message in messages:
            self.dispatch(message)

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        raise NotImplementedError

    def send(self, task_name: str, kwargs: dict[str, Any]) -> None:
        raise NotImplementedError


class InProcessTransport(_Dispatch):
    def __init__(self, bus: InProcessBus) -> None:
        self.bus = bus

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        self.bus.publish(routing_key, body, message_id=message_id)

    def send(self, task_name: str, kwargs: dict[str, Any]) -> None:
        self.bus.send(task_name, kwargs)

    def subscribe(self, spec: QueueSpec, handler: Handler, *, consumers: int = 1) -> None:
        for _ in range(consumers):
            self.bus.subscribe(spec, handler)

    def broadcast_to(self, routing_keys: Sequence[str], handler: Handler) -> None:
        """Hand ``handler`` a copy of every event with these keys (a queue of its own)."""
        self.bus.subscribe(QueueSpec(f"broadcast-{uuid.uuid4().hex}", tuple(routing_keys)), handler)

    def stop(self) -> None:
        """The bus is shared by every service of the process; its owner stops it."""


class BrokerTransport(_Dispatch):
    def __init__(self, amqp_url: str) -> None:
        self._url = amqp_url
        self._publisher = PikaPublisher(amqp_url)
        self._sender = CeleryTaskSender(make_celery(amqp_url))
        self._consumers: list[PikaConsumer] = []
        self._broadcasts: list[BroadcastConsumer] = []
        self._topology_seen = False

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        self._publisher.publish(routing_key, body, message_id=message_id)

    def send(self, task_name: str, kwargs: dict[str, Any]) -> None:
        if not self._topology_seen:
            # Celery does not declare the signing queue (its user may not): check it is there
            # once, so a broker without the topology fails the send (the outbox keeps the
            # row) instead of publishing into nowhere.
            ensure_topology_at(self._url)
            self._topology_seen = True
        self._sender.send(task_name, kwargs)

    def subscribe(self, spec: QueueSpec, handler: Handler, *, consumers: int = 1) -> None:
        """Consume ``spec`` on ``consumers`` threads, each with its own connection: handlers
        that wait on disk and database work in parallel (each message still acked once)."""
        for _ in range(consumers):
            consumer = PikaConsumer(self._url, spec, handler, transient=is_database_outage)
            consumer.start()
            self._consumers.append(consumer)

    def broadcast_to(self, routing_keys: Sequence[str], handler: Handler) -> None:
        """Hand ``handler`` a copy of every event with these keys, at most once, while
        connected (:class:`~meterai_common.broadcast.BroadcastConsumer`)."""
        consumer = BroadcastConsumer(self._url, routing_keys, handler)
        consumer.start()
        self._broadcasts.append(consumer)

    def stop(self) -> None:
        for consumer in self._consumers:
            consumer.stop()
        for broadcast in self._broadcasts:
            broadcast.stop()
        self._publisher.close()


@dataclass
class Periodic:
    """Runs ``chores`` every ``interval_s`` on a daemon thread; a failing chore is logged."""

    name: str
    interval_s: float
    chores: list[Callable[[], Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for chore in self.chores:
                try:
                    chore()
                except Exception:
                    log.exception("%s: chore %r failed", self.name, chore)


class Stoppable(Protocol):
    def stop(self, grace: float = ..., drain_delay: float = ...) -> None: ...


def stop_all(runtimes: Sequence[Stoppable], grace: float, drain_delay: float = 0.0) -> None:
    """Stop every runtime at once, each draining in parallel with the others.

    Each drain waits up to ``grace`` for its calls (open watch and health streams last until
    the end of it); one after the other, a process with four services took four drain periods
    to stop. Together they take one. A runtime that fails to stop is logged; the others still
    stop.
    """

    def stop(runtime: Stoppable) -> None:
        try:
            runtime.stop(grace, drain_delay)
        except Exception:
            log.exception("stopping %r failed", runtime)

    threads = [
        threading.Thread(target=stop, args=(runtime,), name=f"stop-{index}", daemon=True)
        for index, runtime in enumerate(runtimes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
