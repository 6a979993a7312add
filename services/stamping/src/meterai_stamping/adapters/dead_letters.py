"""The ``dead_letters`` table: what the broker gave up delivering, kept for the operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

__all__ = ["DeadLetter", "DeadLetterRepository", "dead_letters_table"]

_metadata = MetaData()

dead_letters_table = Table(
    "dead_letters",
    _metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("message_key", String(64), nullable=False, unique=True),
    Column("job_id", String(36), nullable=True),
    Column("source_queue", String(100), nullable=False),
    Column("routing_key", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("redriven_at", DateTime(timezone=True), nullable=True),
    Column("redriven_as", String(36), nullable=True),
)


@dataclass(frozen=True)
class DeadLetter:
    id: int
    job_id: str | None
    source_queue: str
    routing_key: str
    reason: str
    created_at: datetime
    redriven_at: datetime | None
    redriven_as: str | None


class DeadLetterRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def record(self, values: dict[str, object]) -> bool:
        """Insert once per message; a redelivered dead letter is recognised and ignored."""
        exists = self.conn.execute(
            select(dead_letters_table.c.id).where(
                dead_letters_table.c.message_key == values["message_key"]
            )
        ).first()
        if exists:
            return False
        try:
            with self.conn.begin_nested():
                self.conn.execute(dead_letters_table.insert().values(**values))
        except IntegrityError:
            return False
        return True

    def pending(self, limit: int = 100, after_id: int = 0) -> list[DeadLetter]:
        rows = self.conn.execute(
            select(dead_letters_table)
            .where(dead_letters_table.c.redriven_at.is_(None), dead_letters_table.c.id > after_id)
            .order_by(dead_letters_table.c.id)
            .limit(limit)
        ).all()
        return [
            DeadLetter(
                r.id,
                r.job_id,
                r.source_queue,
                r.routing_key,
                r.reason,
                r.created_at,
                r.redriven_at,
                r.redriven_as,
            )
            for r in rows
        ]

    def mark_redriven(self, job_id: str, new_job_id: str, now: datetime) -> None:
        self.conn.execute(
            update(dead_letters_table)
            .where(
                dead_letters_table.c.job_id == job_id, dead_letters_table.c.redriven_at.is_(None)
            )
            .values(redriven_at=now, redriven_as=new_job_id)
        )
