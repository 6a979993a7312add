"""In-process messaging for the embedded platform (``meterai up``), where no broker runs.

It offers the same two operations the services use on RabbitMQ — publish a domain event,
send a task — and delivers them on worker threads, retrying a failing handler a few times
before giving up on the message like a delivery limit would. Nothing here is durable: on a
restart the stamping service re-drives unfinished jobs from the database, which is the source
of truth in both modes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from meterai_common.messaging import DEAD_LETTERS_QUEUE, DELIVERY_LIMIT, Handler, QueueSpec

__all__ = ["InProcessBus"]

log = logging.getLogger(__name__)


class InProcessBus:
    """Event publisher, event consumer and task queue in one process."""

    def __init__(self, task_threads: int = 2) -> None:
        self._subscriptions: list[tuple[QueueSpec, queue.Queue[tuple[str, bytes, str]]]] = []
        self._tasks: dict[str, Callable[..., None]] = {}
        self._executor = ThreadPoolExecutor(task_threads, thread_name_prefix="inproc-task")
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        for spec, inbox in self._subscriptions:
            if routing_key in spec.routing_keys:
                inbox.put((routing_key, body, message_id))

    def _dead_letter(self, routing_key: str, body: bytes, message_id: str) -> None:
        """Like the broker's dead-letter exchange: hand what failed too often to whoever
        subscribed to the dead-letter queue."""
        for spec, inbox in self._subscriptions:
            if spec.name == DEAD_LETTERS_QUEUE:
                inbox.put((routing_key, body, message_id))

    def subscribe(self, spec: QueueSpec, handler: Handler) -> None:
        """Deliver ``spec``'s messages to ``handler``; subscribing the same spec again adds a
        competing consumer thread on the same inbox, as on a broker queue."""
        existing = next((box for s, box in self._subscriptions if s == spec), None)
        inbox: queue.Queue[tuple[str, bytes, str]] = existing or queue.Queue()
        if existing is None:
            self._subscriptions.append((spec, inbox))
        thread = threading.Thread(
            target=self._consume, args=(inbox, handler), name=f"inproc-{spec.name}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def register_task(self, name: str, function: Callable[..., None]) -> None:
        self._tasks[name] = function

    def send(self, task_name: str, kwargs: dict[str, Any]) -> None:
        try:
            function = self._tasks[task_name]
        except KeyError:
            raise LookupError(f"no in-process worker for task {task_name}") from None
        self._executor.submit(self._run_task, task_name, function, kwargs)

    def stop(self) -> None:
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=False)
        for thread in self._threads:
            thread.join(timeout=5)

    def _run_task(self, name: str, function: Callable[..., None], kwargs: dict[str, Any]) -> None:
        for attempt in range(1, DELIVERY_LIMIT + 1):
            try:
                function(**kwargs)
                return
            except Exception:
                log.exception("task %s failed (attempt %d)", name, attempt)
                time.sleep(0.05 * attempt)
        log.error(
            "task %s dropped after %d attempts; the job reconciler re-drives it",
            name,
            DELIVERY_LIMIT,
        )

    def _consume(self, inbox: queue.Queue[tuple[str, bytes, str]], handler: Handler) -> None:
        while not self._stopping.is_set():
            try:
                routing_key, body, message_id = inbox.get(timeout=0.25)
            except queue.Empty:
                continue
            for attempt in range(1, DELIVERY_LIMIT + 1):
                try:
                    handler(routing_key, body, message_id)
                    break
                except Exception:
                    log.exception("handler for %s failed (attempt %d)", routing_key, attempt)
                    time.sleep(0.05 * attempt)
            else:
                self._dead_letter(routing_key, body, message_id)
