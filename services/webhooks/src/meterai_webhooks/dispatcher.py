"""The delivery loop: posts due deliveries, records each outcome, schedules the retries.

One thread looks for due deliveries (woken at once when an event is recorded in this process,
else every ``poll_s``) and hands each claimed one to a small pool of senders, so a slow
receiver holds one sender, not the loop. Outcomes go to the log in their own transaction;
stamping never waits on any of this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from meterai_common.db import run_in_transaction

from .config import WebhookSettings
from .deliveries import Due, claim, due, record_outcome
from .schedule import retry_delay_s
from .sender import Sender

__all__ = ["DeliveryLoop"]

log = logging.getLogger(__name__)


class DeliveryLoop:
    def __init__(
        self,
        db: Engine,
        settings: WebhookSettings,
        *,
        chores: Callable[[], object] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """:param chores: run on each turn of the loop (closing finished batches)."""
        self._db = db
        self._settings = settings
        self._chores = chores
        self._clock = clock
        self._sender = Sender(settings)
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="webhook-send")
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-loop", daemon=True)
        self._lease = timedelta(seconds=settings.timeout_s + 30)
        """An attempt's claim: longer than any attempt, so only a dead process's expires."""

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop looking; attempts in flight finish (each bounded by the time-out)."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._sender.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._chores()
                self._turn()
            except Exception:
                log.exception("webhooks: delivery loop turn failed; retrying")
            self._wake.wait(self._settings.poll_s)
            self._wake.clear()

    def _turn(self) -> None:
        now = self._clock()
        with self._db.connect() as conn:
            items = due(conn, now, limit=self._settings.concurrency * 4)
        for item in items:
            with self._lock:
                if item.id in self._in_flight or len(self._in_flight) >= self._settings.concurrency:
                    continue
            if not self._claim(item, now):
                continue
            with self._lock:
                self._in_flight.add(item.id)
            future: Future[None] = self._pool.submit(self._attempt, item)
            future.add_done_callback(self._finished_callback(item.id))

    def _claim(self, item: Due, now: datetime) -> bool:
        def work(conn: Connection) -> bool:
            return claim(conn, item, now, self._lease)

        return run_in_transaction(self._db, work)

    def _finished_callback(self, delivery_id: str) -> Callable[[Future[None]], None]:
        return lambda _future: self._finished(delivery_id)

    def _finished(self, delivery_id: str) -> None:
        with self._lock:
            self._in_flight.discard(delivery_id)
        self._wake.set()  # the next event of the same job may go now

    def _attempt(self, item: Due) -> None:
        at = self._clock()
        answer = self._sender.post(
            item.url, item.message_id, item.payload.encode(), item.secrets, at
        )
        failed = item.attempts + 1
        delay = timedelta(
            seconds=retry_delay_s(failed, self._settings.retry_base_s, self._settings.retry_cap_s)
        )
        state = run_in_transaction(
            self._db,
            lambda conn: record_outcome(
                conn,
                item.id,
                at=at,
                status=answer.status,
                error=answer.error,
                duration_ms=answer.duration_ms,
                retry_after=delay,
                max_attempts=self._settings.max_attempts,
            ),
        )
        if answer.error:
            log.info(
                "webhooks: delivery %s attempt %d failed (%s); now %s",
                item.id,
                failed,
                answer.error,
                state,
            )
