"""Pieces every service process wires the same way: the message transport and periodic chores.

A transport is either RabbitMQ (Celery for tasks, pika for events) or the in-process bus of
the embedded platform. Services receive one and never ask which it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

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
from meterai_common.tasks import CeleryTaskSender, make_celery

__all__ = ["BrokerTransport", "InProcessTransport", "Periodic", "Transport"]

log = logging.getLogger(__name__)


class Transport(Protocol):
    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None: ...
    def send(self, task_name: str, kwargs: dict[str, Any]) -> None: ...
    def subscribe(self, spec: QueueSpec, handler: Handler, *, consumers: int = 1) -> None: ...
    def dispatch(self, message: OutboxMessage) -> None: ...
    def stop(self) -> None: ...


class _Dispatch:
    def dispatch(self, message: OutboxMessage) -> None:
        """Publish one outbox row: a task to the signing queue or an event to the exchange."""
        if message.kind == "task":
            self.send(message.name, message.task_kwargs())
        else:
            self.publish(message.name, message.payload, message_id=message.message_id)

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

    def stop(self) -> None:
        """The bus is shared by every service of the process; its owner stops it."""


class BrokerTransport(_Dispatch):
    def __init__(self, amqp_url: str) -> None:
        self._url = amqp_url
        self._publisher = PikaPublisher(amqp_url)
        self._sender = CeleryTaskSender(make_celery(amqp_url))
        self._consumers: list[PikaConsumer] = []
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

    def stop(self) -> None:
        for consumer in self._consumers:
            consumer.stop()
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
