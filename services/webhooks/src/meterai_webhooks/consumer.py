"""The dispatcher's consumer: "job ended" announcements in, delivery rows out.

It reads its own durable queue (``webhooks.events``, bound to ``DocumentStamped`` and
``StampFailed`` on the events exchange), so stamping publishes as before and never waits for
a receiver: a slow or absent dispatcher only lengthens this queue. Each announcement becomes,
in one transaction, a PENDING delivery per endpoint of the job's reseller; the message is
acknowledged after that commit (at least once; the log's unique event key makes a
redelivery a no-op).

``batch.done`` has no announcement of its own: a job whose idempotency key marks it as a
batch document (``batch:<batch id>:<i>``) opens its batch here, and :func:`close_batches`
sends ``batch.done`` once the batch's manifest exists and every accepted job has ended. The
manifest is written when the batch's stream ends, often after its first jobs ended, so
a batch stays open until then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from meterai.events.v1 import events_pb2
from meterai_common.db import run_in_transaction
from meterai_common.documents import DocumentStore
from meterai_stamping.adapters.jobs_table import JobRepository, jobs_table
from meterai_stamping.batches import BatchBook, BatchNotFound, jobs_of, progress
from meterai_stamping.domain.jobs import Job, JobNotFound

from .deliveries import Event, record_event
from .tables import deliveries, endpoints, open_batches

__all__ = ["BATCH_PATIENCE", "EventRecorder"]

log = logging.getLogger(__name__)

BATCH_PATIENCE = timedelta(days=1)
"""A batch still open after this long (its stream never ended) is given up, logged."""
UNRECORDED_PATIENCE = timedelta(minutes=1)
"""``batch.done`` waits for its documents' own events to be recorded first (so it is sent
after them), but not for one that never comes: an endpoint registered mid-batch has no
record of the documents that ended before it."""


class EventRecorder:
    """Turns announcements into deliveries; ``recorded`` wakes the delivery loop."""

    def __init__(
        self,
        db: Engine,
        store: DocumentStore,
        recorded: Callable[[], None] = lambda: None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._recorded = recorded
        self._clock = clock
        self._book = BatchBook(store, submit=_not_here, admit=_not_here)
        """Only :meth:`BatchBook.get` is used: the dispatcher reads manifests, never submits."""

    def __call__(self, routing_key: str, body: bytes, message_id: str) -> None:
        event = self._event(routing_key, body)
        if event is None:
            return
        added = run_in_transaction(self._db, lambda conn: self._record(conn, event))
        if added:
            self._recorded()

    def _event(self, routing_key: str, body: bytes) -> Event | None:
        now = self._clock()
        if routing_key == "DocumentStamped":
            done = events_pb2.DocumentStamped.FromString(body)
            return Event(
                "job.done",
                done.job_id,
                done.reseller_id,
                {
                    "job_id": done.job_id,
                    "serial": done.serial,
                    "document_digest": done.document_digest,
                },
                now,
            )
        if routing_key == "StampFailed":
            failed = events_pb2.StampFailed.FromString(body)
            return Event(
                "job.failed",
                failed.job_id,
                failed.reseller_id,
                {
                    "job_id": failed.job_id,
                    "serial": failed.serial,
                    "failure_code": failed.failure_code,
                    "failure_reason": failed.failure_reason,
                },
                now,
            )
        log.warning("webhooks: ignoring unexpected event %s", routing_key)
        return None

    def _record(self, conn: Connection, event: Event) -> int:
        if not _has_endpoints(conn, event.reseller_id):
            return 0
        added = record_event(conn, event)
        key = conn.scalar(
            sa.select(jobs_table.c.idempotency_key).where(jobs_table.c.job_id == event.subject)
        )
        if isinstance(key, str) and key.startswith("batch:"):
            batch_id = key.split(":")[1]
            known = conn.scalar(
                sa.select(open_batches.c.batch_id).where(open_batches.c.batch_id == batch_id)
            )
            if known is None:
                conn.execute(
                    open_batches.insert().values(
                        batch_id=batch_id, reseller_id=event.reseller_id, seen_at=event.occurred_at
                    )
                )
        return added

    def close_batches(self) -> int:
        """Send ``batch.done`` for every open batch that has ended; returns how many closed."""
        now = self._clock()
        with self._db.connect() as conn:
            waiting = conn.execute(sa.select(open_batches)).all()
        closed = 0
        for batch_id, reseller_id, seen_at in waiting:
            event = self._batch_done(batch_id, reseller_id, now, seen_at)
            if event is None and now - seen_at < BATCH_PATIENCE:
                continue
            if event is None:
                log.warning("webhooks: batch %s never ended within a day; no batch.done", batch_id)

            def close(
                conn: Connection, event: Event | None = event, batch_id: str = batch_id
            ) -> int:
                conn.execute(open_batches.delete().where(open_batches.c.batch_id == batch_id))
                return record_event(conn, event) if event is not None else 0

            if run_in_transaction(self._db, close):
                self._recorded()
            closed += 1
        return closed

    def _recorded_all(self, job_ids: set[str]) -> bool:
        with self._db.connect() as conn:
            recorded = conn.scalar(
                sa.select(sa.func.count(sa.distinct(deliveries.c.subject))).where(
                    deliveries.c.subject.in_(sorted(job_ids))
                )
            )
        return (recorded or 0) >= len(job_ids)

    def _batch_done(
        self, batch_id: str, reseller_id: str, now: datetime, seen_at: datetime
    ) -> Event | None:
        try:
            batch = self._book.get(reseller_id, batch_id)
        except BatchNotFound:
            return None  # its stream has not ended yet
        with self._db.connect() as conn:
            repository = JobRepository(conn)

            def get(job_id: str) -> Job:
                job = repository.get(job_id)
                if job is None:
                    raise JobNotFound(job_id)
                return job

            found = jobs_of(get, batch)
            counts = progress(found, batch)
        jobs = set(found)
        if not counts.complete:
            return None
        if not self._recorded_all(jobs) and now - seen_at < UNRECORDED_PATIENCE:
            return None  # a document's announcement is still on its way to this consumer
        return Event(
            "batch.done",
            batch_id,
            reseller_id,
            {
                "batch_id": batch_id,
                "total": counts.total,
                "accepted": counts.accepted,
                "refused": counts.refused,
                "done": counts.done,
                "failed": counts.failed,
                "job_ids": list(found),
            },
            now,
        )


def _has_endpoints(conn: Connection, reseller_id: str) -> bool:
    return (
        conn.scalar(
            sa.select(endpoints.c.id).where(endpoints.c.reseller_id == reseller_id).limit(1)
        )
        is not None
    )


def _not_here(_: object) -> NoReturn:
    raise RuntimeError("the webhook dispatcher does not submit documents")
