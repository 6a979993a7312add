"""The ``jobs`` table (created by migration ``0002_jobs``) and the queries on it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row

from meterai_stamping.domain.jobs import DocumentFacts, Job, JobState, Placement

__all__ = ["FinishedJob", "JobRepository", "jobs_table"]

_metadata = MetaData()

jobs_table = Table(
    "jobs",
    _metadata,
    Column("job_id", String(36), primary_key=True),
    Column("reseller_id", String(64), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("serial", String(22), nullable=True, unique=True),
    Column("filename", String(255), nullable=False),
    Column("page", Integer, nullable=False),
    Column("rect", String(200), nullable=False),
    Column("document_type", String(100), nullable=False),
    Column("document_number", String(100), nullable=False),
    Column("document_date", String(10), nullable=True),
    Column("document_value_idr", BigInteger, nullable=False),
    Column("digest", String(64), nullable=True),
    Column("contents_start", BigInteger, nullable=True),
    Column("contents_end", BigInteger, nullable=True),
    Column("stamped_size", BigInteger, nullable=True),
    Column("failure_code", String(40), nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("refunded", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("source_size", BigInteger, nullable=True),
    Column("redriven_from", String(36), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("reseller_id", "idempotency_key", name="uq_jobs_reseller_key"),
)


@dataclass(frozen=True)
class FinishedJob:
    """What committing a finished job's stamp needs (:meth:`JobRepository.finish_prepared`)."""

    reseller_id: str
    digest: str
    document_type: str
    document_number: str
    document_date: date | None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _to_job(row: Row[Any]) -> Job:
    return Job(
        job_id=row.job_id,
        reseller_id=row.reseller_id,
        owner_id=row.owner_id,
        state=JobState(row.state),
        serial=row.serial,
        filename=row.filename,
        facts=DocumentFacts(
            document_type=row.document_type,
            document_number=row.document_number,
            document_date=_date(row.document_date),
            document_value_idr=row.document_value_idr,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
        digest=row.digest,
        contents_start=row.contents_start,
        contents_end=row.contents_end,
        stamped_size=row.stamped_size,
        failure_code=row.failure_code,
        failure_reason=row.failure_reason,
        refunded=bool(row.refunded),
        source_size=row.source_size,
        redriven_from=row.redriven_from,
    )


def _encode_token(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        stamp, job_id = json.loads(raw)
        return datetime.fromisoformat(stamp), str(job_id)
    except (ValueError, TypeError) as error:
        raise ValueError("page_token is not one this service issued") from error


_OWNERS_OF = select(jobs_table.c.job_id, jobs_table.c.owner_id).where(
    jobs_table.c.job_id.in_(bindparam("b_job_ids", expanding=True))
)
_FINISH_PREPARED = (
    update(jobs_table)
    .where(
        jobs_table.c.job_id == bindparam("b_job_id"),
        jobs_table.c.serial == bindparam("b_serial"),
        jobs_table.c.state == JobState.PREPARED.value,
    )
    .values(
        state=JobState.DONE.value, updated_at=bindparam("b_now"), stamped_size=bindparam("b_size")
    )
    .returning(
        jobs_table.c.reseller_id,
        jobs_table.c.digest,
        jobs_table.c.document_type,
        jobs_table.c.document_number,
        jobs_table.c.document_date,
    )
)
"""Built once: the statement runs for every stamp."""

_INSERT_JOB = jobs_table.insert()

# Statements of the request path are built once: building a statement and its cache key on
# every call costs more than the database round trip it makes.
_GET_JOB = select(jobs_table).where(jobs_table.c.job_id == bindparam("b_job_id"))
_GET_JOB_FOR_UPDATE = _GET_JOB.with_for_update()
_COUNT_JOBS = select(func.count()).select_from(jobs_table)
_COUNT_BACKLOG = _COUNT_JOBS.where(jobs_table.c.state == JobState.PREPARED.value)
_COUNT_INFLIGHT = _COUNT_BACKLOG.where(jobs_table.c.reseller_id == bindparam("b_reseller_id"))
_COUNT_FINISHED_SINCE = _COUNT_JOBS.where(
    jobs_table.c.state == JobState.DONE.value, jobs_table.c.updated_at >= bindparam("b_since")
)


class JobRepository:
    """Queries on ``jobs`` within the caller's connection/transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, values: dict[str, Any]) -> None:
        self.conn.execute(_INSERT_JOB, values)

    def get(self, job_id: str, *, for_update: bool = False) -> Job | None:
        locking = for_update and self.conn.dialect.name == "postgresql"
        query = _GET_JOB_FOR_UPDATE if locking else _GET_JOB
        row = self.conn.execute(query, {"b_job_id": job_id}).first()
        return _to_job(row) if row else None

    def find_by_key(self, reseller_id: str, key: str) -> tuple[Job, str] | None:
        row = self.conn.execute(
            select(jobs_table).where(
                jobs_table.c.reseller_id == reseller_id, jobs_table.c.idempotency_key == key
            )
        ).first()
        return (_to_job(row), row.request_hash) if row else None

    def finish_prepared(
        self, job_id: str, serial: str, now: datetime, stamped_size: int
    ) -> FinishedJob | None:
        """Move the PREPARED job with this serial to DONE and return what its stamp needs;
        None (nothing written) if it is in another state or has another serial.

        The guarded update takes the row lock, checks the state and returns the job's facts in
        one statement, so a job is finished once whatever answers arrive, without reading it.
        """
        row = self.conn.execute(
            _FINISH_PREPARED,
            {"b_job_id": job_id, "b_serial": serial, "b_now": now, "b_size": stamped_size},
        ).first()
        if row is None:
            return None
        return FinishedJob(
            reseller_id=row.reseller_id,
            digest=row.digest or "",
            document_type=row.document_type,
            document_number=row.document_number,
            document_date=_date(row.document_date),
        )

    def owners_of(self, job_ids: list[str]) -> dict[str, str]:
        """Job id → owner id of these jobs (one read for a batch)."""
        rows = self.conn.execute(_OWNERS_OF, {"b_job_ids": job_ids})
        return {row.job_id: row.owner_id for row in rows}

    def set_state(self, job_id: str, now: datetime, **values: Any) -> None:
        self.conn.execute(
            update(jobs_table).where(jobs_table.c.job_id == job_id).values(updated_at=now, **values)
        )

    def page(
        self, reseller_id: str, page_size: int, page_token: str | None
    ) -> tuple[list[Job], str | None]:
        """Newest first, keyset-paginated on (created_at, job_id)."""
        query = select(jobs_table).where(jobs_table.c.reseller_id == reseller_id)
        if page_token:
            created_at, job_id = _decode_token(page_token)
            query = query.where(
                (jobs_table.c.created_at < created_at)
                | ((jobs_table.c.created_at == created_at) & (jobs_table.c.job_id < job_id))
            )
        rows = self.conn.execute(
            query.order_by(jobs_table.c.created_at.desc(), jobs_table.c.job_id.desc()).limit(
                page_size + 1
            )
        ).all()
        jobs = [_to_job(row) for row in rows[:page_size]]
        token = (
            _encode_token(jobs[-1].created_at, jobs[-1].job_id) if len(rows) > page_size else None
        )
        return jobs, token

    def _before(self, state: JobState, column: Any, before: datetime, limit: int) -> list[Job]:
        rows = self.conn.execute(
            select(jobs_table)
            .where(jobs_table.c.state == state.value, column < before)
            .order_by(column)
            .limit(limit)
        ).all()
        return [_to_job(row) for row in rows]

    def stuck(self, state: JobState, older_than: datetime, limit: int = 500) -> list[Job]:
        """Jobs in ``state`` untouched since ``older_than`` (candidates for a re-drive)."""
        return self._before(state, jobs_table.c.updated_at, older_than, limit)

    def stuck_since(self, state: JobState, created_before: datetime, limit: int = 500) -> list[Job]:
        """Jobs in ``state`` accepted before ``created_before`` (past their deadline)."""
        return self._before(state, jobs_table.c.created_at, created_before, limit)

    def _count(self, *where: Any) -> int:
        return int(self.conn.execute(_COUNT_JOBS.where(*where)).scalar_one())

    def queue_position(self, job: Job) -> int:
        """Prepared jobs created before this one: what the signing tier has to do first."""
        return self._count(
            jobs_table.c.state == JobState.PREPARED.value,
            jobs_table.c.created_at < job.created_at,
        )

    def placement_of(self, job_id: str) -> Placement:
        row = self.conn.execute(
            select(jobs_table.c.page, jobs_table.c.rect).where(jobs_table.c.job_id == job_id)
        ).one()
        x0, y0, x1, y1 = (float(v) for v in row.rect.split(","))
        return Placement(row.page, x0, y0, x1, y1)

    def count_by_state(self) -> dict[str, int]:
        rows = self.conn.execute(
            select(jobs_table.c.state, func.count()).group_by(jobs_table.c.state)
        ).all()
        return {state: int(count) for state, count in rows}

    def inflight(self, reseller_id: str) -> int:
        """Jobs of one reseller waiting for the signing tier (the fairness cap counts these)."""
        return int(self.conn.execute(_COUNT_INFLIGHT, {"b_reseller_id": reseller_id}).scalar_one())

    def finished_since(self, since: datetime) -> int:
        """Jobs that reached DONE after ``since`` (the platform's recent throughput)."""
        return int(self.conn.execute(_COUNT_FINISHED_SINCE, {"b_since": since}).scalar_one())

    def finishes_since(self, since: datetime) -> tuple[int, datetime | None, datetime | None]:
        """(count, first, last) of the jobs that reached DONE after ``since``: how fast the
        platform drains its backlog while it works (see ``DrainRate``)."""
        row = self.conn.execute(
            select(
                func.count(), func.min(jobs_table.c.updated_at), func.max(jobs_table.c.updated_at)
            ).where(jobs_table.c.state == JobState.DONE.value, jobs_table.c.updated_at >= since)
        ).one()
        return int(row[0]), row[1], row[2]

    def backlog(self) -> int:
        """Jobs waiting for the signing tier, all resellers."""
        return int(self.conn.execute(_COUNT_BACKLOG).scalar_one())
