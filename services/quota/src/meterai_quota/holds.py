"""The stamping protocol: hold a unit and a serial for a job, then commit or release it.

``hold`` runs inside the stamping service's transaction together with the job row and the
outbox row (G1): the serial is drawn on the seal *before* the hold commits, so the caller may pass
the serial it generated. Every step is idempotent per job id, because the job may be retried or
redelivered at any point (G5, G6):

* ``hold`` again returns the same serial and debits nothing;
* ``commit`` again returns the same serial; ``release`` again is a no-op;
* a released job's serial is VOID forever and the job cannot be committed; a committed job
  cannot be released.

Locking: the serial row is locked (by ``UPDATE ... WHERE status = 'HELD'``) before any account
row, and account rows are locked in one global order, so concurrent protocol steps wait for each
other but never deadlock. None of these functions opens or commits a transaction.

Round trips: on PostgreSQL the common case of ``hold`` and ``commit`` is one statement each
(:mod:`.adapters.postgres_protocol`); only replays and refusals read more. Elsewhere (SQLite, the
embedded mode) each step is its own statement, in the same order with the same outcomes. A refusal
writes nothing on either path, so the caller's transaction stays usable without a SAVEPOINT.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .adapters import postgres_protocol
from .adapters.statements import insert_or_ignore
from .adapters.tables import accounts, serials, transactions
from .domain.errors import (
    AlreadyCommitted,
    HoldNotFound,
    HoldReleased,
    IdempotencyConflict,
    InsufficientQuota,
    InvalidArgument,
    LedgerInvariantViolated,
    MalformedSerial,
    ResellerNotFound,
    SerialCollision,
)
from .domain.ledger_rules import (
    AccountKind,
    TransactionKind,
    commit_postings,
    hold_postings,
    release_postings,
)
from .domain.model import SerialStatus
from .domain.serials import generate_serial, is_well_formed
from .ledger import apply_delta, post, record_transaction

__all__ = ["commit", "hold", "reap_expired_holds", "release"]

_HEX_DIGEST = re.compile(r"[0-9a-f]{64,128}")


def _text(name: str, value: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise InvalidArgument(f"{name} must be 1-{limit} printable characters")
    return value


def _aware(now: datetime) -> None:
    # The single-statement path binds ``now`` itself; refuse naive values there as the table
    # types do on the portable path.
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidArgument("now must be a timezone-aware datetime")


def _existing(conn: Connection, job_id: str) -> sa.Row[tuple[object, ...]] | None:
    return conn.execute(sa.select(serials).where(serials.c.job_id == job_id)).first()


def hold(
    conn: Connection,
    *,
    owner_id: str,
    reseller_id: str,
    job_id: str,
    serial: str | None = None,
    now: datetime,
) -> str:
    """Move one unit of ``owner_id``'s quota from available to held and allocate a serial to
    ``job_id``; return the serial.

    :param owner_id: the quota owner (root reseller) from the caller's authenticated principal.
    :param reseller_id: the reseller making the job (may be a sub-account of ``owner_id``).
    :param serial: a serial the caller drew in advance (it is already on the seal); a fresh one
        is drawn otherwise. Raises :class:`SerialCollision` if it belongs to another job.
    :raises InsufficientQuota: no available unit; nothing was written.
    :raises HoldReleased: the job was already released; it needs a new job id.
    """
    _text("job_id", job_id, 64)
    if serial is None:
        serial = generate_serial()
    elif not isinstance(serial, str) or not is_well_formed(serial):
        raise MalformedSerial("serial is not a well-formed meterai serial")
    _aware(now)
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            postgres_protocol.HOLD,
            {
                "owner_id": owner_id,
                "reseller_id": reseller_id,
                "job_id": job_id,
                "serial": serial,
                "now": now,
                "transaction_id": uuid.uuid4().hex,
                "kind": TransactionKind.HOLD.value,
            },
        ).one()
        debited, allocated, posted = row.debited == 1, row.serial is not None, row.entries == 2
    else:
        debited, allocated, posted = _hold_portable(
            conn, owner_id=owner_id, reseller_id=reseller_id, job_id=job_id, serial=serial, now=now
        )
    if not debited:
        existing = _existing(conn, job_id)
        if existing is not None:
            return _replayed_hold(existing, owner_id)
        if conn.scalar(sa.select(accounts.c.owner_id).where(accounts.c.owner_id == owner_id)):
            raise InsufficientQuota()
        raise ResellerNotFound(f"{owner_id} is not a quota owner")
    if not allocated:
        # The job id or serial was taken by a transaction that committed after this one began.
        # Give the unit back before deciding, so this call leaves nothing in the caller's
        # transaction whatever it raises or returns.
        apply_delta(conn, owner_id, AccountKind.AVAILABLE, +1)
        existing = _existing(conn, job_id)
        if existing is None:
            raise SerialCollision(f"serial {serial} already exists; draw another")
        return _replayed_hold(existing, owner_id)
    if not posted:
        raise LedgerInvariantViolated(f"held account of {owner_id} is missing")
    return serial


def _hold_portable(
    conn: Connection, *, owner_id: str, reseller_id: str, job_id: str, serial: str, now: datetime
) -> tuple[bool, bool, bool]:
    """The steps of :data:`postgres_protocol.HOLD` as separate statements; return whether the
    unit was debited, the serial allocated and the hold posted, stopping at the first miss."""
    if not apply_delta(conn, owner_id, AccountKind.AVAILABLE, -1):
        return False, False, False
    inserted = conn.execute(
        insert_or_ignore(conn, serials)
        .values(
            serial=serial,
            job_id=job_id,
            owner_id=owner_id,
            reseller_id=reseller_id,
            status=SerialStatus.HELD.value,
            held_at=now,
        )
        .returning(serials.c.serial)
    ).first()
    if inserted is None:
        return True, False, False
    if not apply_delta(conn, owner_id, AccountKind.HELD, +1):
        return True, True, False
    record_transaction(
        conn,
        owner_id=owner_id,
        kind=TransactionKind.HOLD,
        postings=hold_postings(),
        now=now,
        job_id=job_id,
    )
    return True, True, True


def _replayed_hold(existing: sa.Row[tuple[object, ...]], owner_id: str) -> str:
    if existing.owner_id != owner_id:
        raise IdempotencyConflict("job id already holds quota of another owner")
    if existing.status == SerialStatus.VOID.value:
        raise HoldReleased(f"job {existing.job_id} was released; its serial is void")
    return str(existing.serial)


def commit(
    conn: Connection,
    *,
    job_id: str,
    document_digest: str,
    document_type: str,
    document_number: str,
    document_date: date | None,
    now: datetime,
    trusted_time: datetime | None = None,
) -> str:
    """Turn the job's held unit into a consumed one and issue its serial for this document;
    return the serial.

    :param document_digest: lower-case hex digest (SHA-256 or longer) of the stamped PDF.
    :param document_number: the document's own number; empty when the document has none.
    :param document_date: the date written on the document, ``None`` when it has none.
    :param trusted_time: the ``genTime`` of the seal's signature timestamp (PAdES B-T and
        above), ``None`` for a seal without one; recorded beside ``issued_at``, the platform's
        own clock, for the public serial lookup.
    :raises IdempotencyConflict: the serial was already issued for a different document.
    :raises HoldReleased: the hold was released (e.g. reaped); the stamp must not be delivered.
    :raises HoldNotFound: the job never held quota.
    """
    _text("job_id", job_id, 64)
    if not isinstance(document_digest, str) or not _HEX_DIGEST.fullmatch(document_digest):
        raise InvalidArgument("document digest must be 64-128 lower-case hex characters")
    _text("document_type", document_type, 64)
    if document_number:
        _text("document_number", document_number, 128)
    if document_date is not None and not isinstance(document_date, date):
        raise InvalidArgument("document date must be a date")
    _aware(now)
    if trusted_time is not None and (
        not isinstance(trusted_time, datetime) or trusted_time.tzinfo is None
    ):
        raise InvalidArgument("trusted time must be a timezone-aware datetime")
    facts: dict[str, object] = {
        "job_id": job_id,
        "now": now,
        "document_digest": document_digest,
        "document_type": document_type,
        "document_number": document_number or None,
        "document_date": document_date,
        "trusted_time": trusted_time,
    }
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            postgres_protocol.COMMIT,
            {**facts, "transaction_id": uuid.uuid4().hex, "kind": TransactionKind.COMMIT.value},
        ).first()
        if row is not None:
            if row.entries != 2:
                raise LedgerInvariantViolated(f"job {job_id} is held but its held unit is missing")
            return str(row.serial)
    else:
        serial = _commit_portable(
            conn,
            job_id=job_id,
            now=now,
            document_digest=document_digest,
            document_type=document_type,
            document_number=document_number or None,
            document_date=document_date,
            trusted_time=trusted_time,
        )
        if serial is not None:
            return serial
    existing = _existing(conn, job_id)
    if existing is None:
        raise HoldNotFound(f"job {job_id} holds no quota")
    if existing.status == SerialStatus.VOID.value:
        raise HoldReleased(f"job {job_id} was released; its serial is void")
    if existing.document_digest != document_digest:
        raise IdempotencyConflict(f"job {job_id} was committed for another document")
    return str(existing.serial)


def _commit_portable(
    conn: Connection,
    *,
    job_id: str,
    now: datetime,
    document_digest: str,
    document_type: str,
    document_number: str | None,
    document_date: date | None,
    trusted_time: datetime | None,
) -> str | None:
    """The steps of :data:`postgres_protocol.COMMIT` as separate statements; return the serial,
    or ``None`` if the job has no HELD serial."""
    row = conn.execute(
        serials.update()
        .where(serials.c.job_id == job_id, serials.c.status == SerialStatus.HELD.value)
        .values(
            status=SerialStatus.ISSUED.value,
            issued_at=now,
            document_digest=document_digest,
            document_type=document_type,
            document_number=document_number,
            document_date=document_date,
            trusted_time=trusted_time,
        )
        .returning(serials.c.serial, serials.c.owner_id)
    ).first()
    if row is None:
        return None
    post(
        conn,
        owner_id=row.owner_id,
        kind=TransactionKind.COMMIT,
        postings=commit_postings(),
        now=now,
        job_id=job_id,
    )
    return str(row.serial)


def release(conn: Connection, *, job_id: str, reason: str, now: datetime) -> str:
    """Return the job's held unit to available and void its serial forever; return the serial.

    Releasing twice is harmless. The release transaction references the hold it reverses.

    :raises AlreadyCommitted: the stamp was issued; refunds of issued stamps are not automatic.
    :raises HoldNotFound: the job never held quota.
    """
    _text("job_id", job_id, 64)
    _text("reason", reason, 200)
    row = conn.execute(
        serials.update()
        .where(serials.c.job_id == job_id, serials.c.status == SerialStatus.HELD.value)
        .values(status=SerialStatus.VOID.value, voided_at=now, void_reason=reason)
        .returning(serials.c.serial, serials.c.owner_id)
    ).first()
    if row is None:
        existing = _existing(conn, job_id)
        if existing is None:
            raise HoldNotFound(f"job {job_id} holds no quota")
        if existing.status == SerialStatus.ISSUED.value:
            raise AlreadyCommitted(f"job {job_id} was stamped; its serial is issued")
        return str(existing.serial)
    hold_id = conn.scalar(
        sa.select(transactions.c.id).where(
            transactions.c.job_id == job_id, transactions.c.kind == TransactionKind.HOLD.value
        )
    )
    post(
        conn,
        owner_id=row.owner_id,
        kind=TransactionKind.RELEASE,
        postings=release_postings(),
        now=now,
        job_id=job_id,
        reverses_id=hold_id,
        memo=reason[:200],
    )
    return str(row.serial)


def reap_expired_holds(
    conn: Connection, now: datetime, ttl: timedelta, *, limit: int = 100
) -> list[str]:
    """Release holds older than ``ttl`` (jobs that died without committing or releasing);
    return the job ids released.

    Rows another transaction is working on are skipped (``SKIP LOCKED`` on PostgreSQL), so the
    reaper never waits for, or races with, a worker that is committing the same job right now.
    Call repeatedly until it returns fewer than ``limit`` jobs.
    """
    if ttl <= timedelta(0):
        raise InvalidArgument("hold ttl must be positive")
    job_ids = conn.scalars(
        sa.select(serials.c.job_id)
        .where(serials.c.status == SerialStatus.HELD.value, serials.c.held_at < now - ttl)
        .order_by(serials.c.held_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for job_id in job_ids:
        release(conn, job_id=job_id, reason="hold expired", now=now)
    return list(job_ids)
