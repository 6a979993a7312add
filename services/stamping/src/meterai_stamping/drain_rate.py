"""How long a job will wait: its place in the queue over the rate the platform drains it.

The rate is measured from the finishes themselves: over the last ``window``, ``n`` jobs
reached DONE between the first and the last of them, so the platform drained ``(n - 1) /
(last - first)`` jobs a second *while it was working*. Dividing ``n`` by the whole window
instead, as the first estimate did, counts the idle time before a burst as slowness: three
seconds of work after a quiet minute read as a twentieth of the real rate, and a job done in 3 s
was announced for 6.4 minutes. Before any two finishes are seen, a per-document time assumed
from the pipeline's own latency stands in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from meterai_common.db import reading
from meterai_stamping.adapters.jobs_table import JobRepository

__all__ = ["DrainRate", "finishes_in"]

Finishes = Callable[[timedelta], tuple[int, float]]
"""``(count, seconds from the first to the last)`` of the jobs finished within a window."""


class DrainRate:
    """Jobs the platform finishes per second while it works, read at most every ``sample_s``.

    :param finishes: reads the recent finishes (:func:`finishes_in`).
    :param assumed_ms: time per document before a rate has been measured.
    """

    def __init__(
        self,
        finishes: Finishes,
        *,
        window: timedelta = timedelta(seconds=60),
        sample_s: float = 1.0,
        assumed_ms: int = 15,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._finishes = finishes
        self._window = window
        self._sample_s = sample_s
        self._assumed_ms = assumed_ms
        self._clock = clock
        self._sample: tuple[float, float] = (float("-inf"), 0.0)
        self._lock = threading.Lock()

    def per_second(self) -> float:
        """The measured rate, 0.0 when fewer than two finishes fall in the window."""
        now = self._clock()
        with self._lock:
            sampled_at, rate = self._sample
            if now - sampled_at < self._sample_s:
                return rate
            self._sample = (now, rate)  # concurrent callers keep the old value meanwhile
        count, span_s = self._finishes(self._window)
        rate = (count - 1) / span_s if count >= 2 and span_s > 0 else 0.0
        with self._lock:
            self._sample = (now, rate)
        return rate

    def expected_wait_ms(self, ahead: int) -> int:
        """Milliseconds until a job with ``ahead`` jobs before it is done."""
        rate = self.per_second()
        if rate <= 0:
            return (ahead + 1) * self._assumed_ms
        return int((ahead + 1) * 1000 / rate)


def finishes_in(db: Engine) -> Finishes:
    """The finishes reader of :class:`DrainRate` over the jobs table."""

    def read(window: timedelta) -> tuple[int, float]:
        with reading(db) as conn:
            count, first, last = JobRepository(conn).finishes_since(datetime.now(UTC) - window)
        if first is None or last is None:
            return count, 0.0
        return count, (_utc(last) - _utc(first)).total_seconds()

    return read


def _utc(moment: datetime) -> datetime:
    """SQLite returns the naive UTC time it stored; PostgreSQL an aware one."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
