"""Wakes ``WatchJob`` streams when their job ends, instead of each polling the database.

Every stamping process hears the platform's "job ended" announcements (``DocumentStamped``,
``StampFailed``, published by whichever process finished or failed the job, through the
outbox) on a private broadcast queue, and :class:`JobUpdates` wakes the streams watching that
job at once. A stream then reads its job once and sends the change. While its job waits in the
queue, a stream also looks again every ``QUEUED_REFRESH_S`` (its queue position moves as other
jobs finish); otherwise it looks only every ``SAFETY_REFRESH_S``, in case an announcement was
missed (broadcasts are at most once): the database stays the record, the announcement only
says when to read it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from google.protobuf.message import DecodeError

from meterai.events.v1 import events_pb2

__all__ = ["ENDED_EVENTS", "QUEUED_REFRESH_S", "SAFETY_REFRESH_S", "JobUpdates"]

ENDED_EVENTS = ("DocumentStamped", "StampFailed")
QUEUED_REFRESH_S = 1.0
"""How often a stream whose job waits in the queue refreshes its position."""
SAFETY_REFRESH_S = 5.0
"""How often any stream reads its job even without an announcement."""
_REMEMBERED = 10_000


class JobUpdates:
    """The announcements heard, and the streams waiting for them."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._generation = 0
        self._ended: OrderedDict[str, int] = OrderedDict()
        self._closed = False

    def handle(self, routing_key: str, body: bytes, message_id: str) -> None:
        """A broadcast handler: note that the announced job ended and wake its watchers."""
        try:
            if routing_key == "DocumentStamped":
                job_id = events_pb2.DocumentStamped.FromString(body).job_id
            elif routing_key == "StampFailed":
                job_id = events_pb2.StampFailed.FromString(body).job_id
            else:
                return
        except DecodeError:
            return
        self.ended(job_id)

    def ended(self, job_id: str) -> None:
        with self._changed:
            self._generation += 1
            self._ended[job_id] = self._generation
            self._ended.move_to_end(job_id)
            while len(self._ended) > _REMEMBERED:
                self._ended.popitem(last=False)
            self._changed.notify_all()

    def close(self) -> None:
        """Wake every stream for good (the server is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def mark(self) -> int:
        """A point in the announcements; :meth:`wait` waits for what comes after it."""
        with self._changed:
            return self._generation

    def wait_any(self, after: int, timeout_s: float) -> bool:
        """Wait until any job is announced after ``after`` (or the hub closes)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                if self._closed or self._generation > after:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)

    def wait(self, job_id: str, after: int, timeout_s: float) -> bool:
        """Wait until ``job_id`` is announced after ``after``, the hub closes, or
        ``timeout_s`` passes; True if the job was announced (or the hub closed)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                if self._closed or self._ended.get(job_id, 0) > after:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
