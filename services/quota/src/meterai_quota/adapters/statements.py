"""Dialect-aware statement builders shared by the quota service layer.

Only constructs that differ between PostgreSQL and SQLite live here, so the service modules read
as plain SQLAlchemy Core.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

__all__ = ["insert_or_ignore"]


def insert_or_ignore(conn: Connection, table: sa.Table) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for ``table`` on the connection's backend.

    Used where a UNIQUE constraint is the arbiter of a race (idempotency keys, job ids): on
    PostgreSQL the losing insert waits for the winner to commit and then inserts nothing, instead
    of raising an error that would abort the caller's whole transaction. Add ``RETURNING`` to
    learn whether a row was inserted: drivers do not report a reliable rowcount for INSERT.
    """
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
