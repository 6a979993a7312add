"""Announcements every process hears: a private queue per subscriber on the events exchange.

Work queues (``stamping.events``) give each message to one consumer; an announcement such as
"job X ended" must reach every stamping process, because any of them may hold a client's
``WatchJob`` stream for X. Each :class:`BroadcastConsumer` declares its own exclusive,
auto-deleted queue bound to the routing keys it wants, so the broker copies every matching
event to each. Delivery is at most once and only while connected: subscribers use it to
*wake up early*, never as the record (the database is), and look again on their own after a
while.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pika

from meterai_common.messaging import (
    EVENTS_EXCHANGE,
    Handler,
    _parameters,
    consume_until_stopped,
    ensure_topology,
)

__all__ = ["BroadcastConsumer"]

log = logging.getLogger(__name__)


class BroadcastConsumer:
    """Hands every event with one of ``routing_keys`` to ``handler`` on its own thread."""

    def __init__(self, url: str, routing_keys: Sequence[str], handler: Handler) -> None:
        self._url = url
        self._keys = tuple(routing_keys)
        self._handler = handler
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="broadcast", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        consume_until_stopped("broadcast", self._consume, self._stopping, self.connected)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(_parameters(self._url))
        try:
            # Passive check of the topology (a service user may not declare the exchange); the
            # queue is server-named and exclusive, which the stamping tier's user may create.
            channel = ensure_topology(connection)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            for key in self._keys:
                channel.queue_bind(queue, EVENTS_EXCHANGE, routing_key=key)
            self.connected.set()
            for method, properties, body in channel.consume(
                queue, auto_ack=True, inactivity_timeout=0.25
            ):
                if self._stopping.is_set():
                    break
                if method is None:
                    continue
                try:
                    self._handler(method.routing_key, body, properties.message_id or "")
                except Exception:
                    log.exception("broadcast: handler failed for %s", method.routing_key)
            channel.cancel()
        finally:
            if connection.is_open:
                connection.close()
