"""The durable delivery log: one row per event and endpoint, its attempts, replay.

A delivery is PENDING until the endpoint answers 2xx (DELIVERED) or the last attempt failed
(DEAD, the dead-letter view). Rows are written in the transaction that records the event,
so an event the dispatcher acknowledged to the broker is never lost; the unique
``(endpoint_id, event_key)`` makes a redelivered announcement a no-op.

Several dispatcher processes may share the log: an attempt is *claimed* by moving the row's
``next_attempt_at`` past the attempt's time-out with a guarded update, so one process
posts it; a process that dies mid-attempt leaves the claim to expire and the row is tried
again (at least once, never lost).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import InvalidEndpoint
from .tables import attempts, deliveries, endpoints

__all__ = [
    "DEAD",
    "DELIVERED",
    "PENDING",
    "Delivery",
    "Event",
    "claim",
    "deliveries_of",
    "due",
    "record_event",
    "record_outcome",
    "replay",
]

PENDING, DELIVERED, DEAD = "PENDING", "DELIVERED", "DEAD"
BATCH_DONE = "batch.done"
MAX_ERROR = 500


@dataclass(frozen=True)
class Event:
    """Something a reseller hears about: ``job.done``, ``job.failed`` or ``batch.done``."""

    type: str
    subject: str
    """The job or batch id: one subject's events are delivered in the order recorded."""
    reseller_id: str
    data: dict[str, Any]
    occurred_at: datetime

    @property
    def key(self) -> str:
        return f"{self.type}:{self.subject}"

    def body(self) -> str:
        """The JSON posted: Standard Webhooks' ``type``/``timestamp``/``data`` envelope."""
        return json.dumps(
            {
                "type": self.type,
                "timestamp": self.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "data": self.data,
            },
            separators=(",", ":"),
            sort_keys=True,
        )


@dataclass(frozen=True)
class Delivery:
    id: str
    seq: int
    endpoint_id: str
    message_id: str
    event_type: str
    subject: str
    state: str
    attempts: int
    last_status: int
    last_error: str
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        seq=row.seq,
        endpoint_id=row.endpoint_id,
        message_id=row.message_id,
        event_type=row.event_type,
        subject=row.subject,
        state=row.state,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
    )


def record_event(conn: Connection, event: Event) -> int:
    """One PENDING delivery per endpoint of the reseller; returns how many are new."""
    targets = conn.execute(
        sa.select(endpoints.c.id).where(endpoints.c.reseller_id == event.reseller_id)
    ).scalars()
    body = event.body()
    added = 0
    for endpoint_id in targets:
        exists = conn.scalar(
            sa.select(deliveries.c.seq).where(
                deliveries.c.endpoint_id == endpoint_id, deliveries.c.event_key == event.key
            )
        )
        if exists is not None:
            continue
        try:
            with conn.begin_nested():
                conn.execute(
                    deliveries.insert().values(
                        id=str(uuid.uuid4()),
                        endpoint_id=endpoint_id,
                        reseller_id=event.reseller_id,
                        message_id=f"msg_{uuid.uuid4().hex}",
                        event_key=event.key,
                        event_type=event.type,
                        subject=event.subject,
                        payload=body,
                        state=PENDING,
                        attempts=0,
                        next_attempt_at=event.occurred_at,
                        last_status=0,
                        last_error="",
                        created_at=event.occurred_at,
                        delivered_at=None,
                    )
                )
            added += 1
        except sa.exc.IntegrityError:
            continue  # a concurrent redelivery of the same announcement recorded it
    return added


@dataclass(frozen=True)
class Due:
    """A delivery whose turn it is, with what its attempt needs."""

    id: str
    endpoint_id: str
    next_attempt_at: datetime
    attempts: int
    message_id: str
    payload: str
    url: str
    secrets: tuple[str, ...]


def due(conn: Connection, now: datetime, limit: int = 200) -> list[Due]:
    """Deliveries to attempt now, oldest first, at most one per endpoint and subject.

    The first PENDING delivery of each (endpoint, subject) is the only one eligible: a later
    event of the same job waits until the earlier one is delivered or dead, so ``job.done``
    never overtakes an earlier event of its job even while the earlier one is in back-off.
    A ``batch.done`` also waits for its documents' own deliveries at its endpoint (its
    ``data.job_ids``), so it is the batch's last word.
    """
    rows = conn.execute(
        sa.select(
            deliveries.c.id,
            deliveries.c.endpoint_id,
            deliveries.c.subject,
            deliveries.c.event_type,
            deliveries.c.next_attempt_at,
            deliveries.c.attempts,
            deliveries.c.message_id,
            deliveries.c.payload,
            endpoints.c.url,
            endpoints.c.secret,
            endpoints.c.previous_secret,
            endpoints.c.previous_expires_at,
        )
        .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
        .where(deliveries.c.state == PENDING)
        .order_by(deliveries.c.seq)
        .limit(limit * 5)
    ).all()
    seen: set[tuple[str, str]] = set()
    found: list[Due] = []
    for row in rows:
        turn = (row.endpoint_id, row.subject)
        held = turn in seen or (
            row.event_type == BATCH_DONE
            and any((row.endpoint_id, job) in seen for job in _documents_of(row.payload))
        )
        seen.add(turn)
        if held or row.next_attempt_at > now:
            continue
        signing = [row.secret]
        if row.previous_secret and row.previous_expires_at and row.previous_expires_at > now:
            signing.append(row.previous_secret)
        found.append(
            Due(
                id=row.id,
                endpoint_id=row.endpoint_id,
                next_attempt_at=row.next_attempt_at,
                attempts=row.attempts,
                message_id=row.message_id,
                payload=row.payload,
                url=row.url,
                secrets=tuple(signing),
            )
        )
        if len(found) >= limit:
            break
    return found


def _documents_of(payload: str) -> list[str]:
    jobs = json.loads(payload).get("data", {}).get("job_ids", [])
    return [job for job in jobs if isinstance(job, str)]


def claim(conn: Connection, item: Due, now: datetime, lease: timedelta) -> bool:
    """Take the attempt for this process; False if another process took it first."""
    result = conn.execute(
        deliveries.update()
        .where(
            deliveries.c.id == item.id,
            deliveries.c.state == PENDING,
            deliveries.c.next_attempt_at == item.next_attempt_at,
        )
        .values(next_attempt_at=now + lease, attempts=deliveries.c.attempts + 1)
    )
    return result.rowcount == 1


def record_outcome(
    conn: Connection,
    delivery_id: str,
    *,
    at: datetime,
    status: int,
    error: str,
    duration_ms: int,
    retry_after: timedelta | None,
    max_attempts: int,
) -> str:
    """Log the attempt and move the delivery on: DELIVERED on 2xx, else back-off or DEAD.

    :param retry_after: the wait before the next attempt (from the schedule).
    :returns: the delivery's new state.
    """
    conn.execute(
        attempts.insert().values(
            delivery_id=delivery_id,
            at=at,
            status=status,
            error=error[:MAX_ERROR],
            duration_ms=duration_ms,
        )
    )
    row = conn.execute(
        sa.select(deliveries.c.attempts, deliveries.c.state).where(deliveries.c.id == delivery_id)
    ).first()
    if row is None or row.state != PENDING:
        return row.state if row is not None else DEAD  # deleted with its endpoint, or replayed
    values: dict[str, Any] = {"last_status": status, "last_error": error[:MAX_ERROR]}
    if 200 <= status < 300:
        values.update(state=DELIVERED, delivered_at=at)
    elif row.attempts >= max_attempts:
        values.update(state=DEAD)
    else:
        values.update(next_attempt_at=at + (retry_after or timedelta(0)))
    conn.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(**values))
    return str(values.get("state", PENDING))


def deliveries_of(
    conn: Connection,
    reseller_id: str,
    *,
    endpoint_id: str | None = None,
    state: str | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """The reseller's delivery log, newest first (``state=DEAD``: the dead-letter view)."""
    query = sa.select(deliveries).where(deliveries.c.reseller_id == reseller_id)
    if endpoint_id:
        query = query.where(deliveries.c.endpoint_id == endpoint_id)
    if state:
        query = query.where(deliveries.c.state == state)
    rows = conn.execute(query.order_by(deliveries.c.seq.desc()).limit(limit))
    return [_delivery(row) for row in rows]


def replay(
    conn: Connection,
    reseller_id: str,
    now: datetime,
    *,
    delivery_ids: Sequence[str] = (),
    endpoint_id: str | None = None,
) -> int:
    """Send deliveries again with a fresh count of attempts; the ``webhook-id`` stays, so a
    receiver that already has the event recognises it.

    :param delivery_ids: these (any state); without them, every DEAD one of ``endpoint_id``.
    """
    query = deliveries.update().where(deliveries.c.reseller_id == reseller_id)
    if delivery_ids:
        for delivery_id in delivery_ids:
            _check_id(delivery_id)
        query = query.where(deliveries.c.id.in_(list(delivery_ids)))
    elif endpoint_id:
        query = query.where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.state == DEAD)
    else:
        raise InvalidEndpoint(
            "name the deliveries to replay (delivery_ids) or an endpoint whose dead "
            "deliveries to replay (endpoint_id)",
            field="delivery_ids",
        )
    result = conn.execute(
        query.values(state=PENDING, attempts=0, next_attempt_at=now, delivered_at=None)
    )
    return int(result.rowcount)


def _check_id(value: Iterable[str] | str) -> None:
    if not isinstance(value, str) or len(value) != 36:
        raise InvalidEndpoint(
            "each delivery id must be a delivery id (a UUID)", field="delivery_ids"
        )
