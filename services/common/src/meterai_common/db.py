"""Database plumbing shared by every service: engines, migrations and write transactions.

The platform has ONE relational database (PostgreSQL in production, SQLite in embedded mode and
fast tests). This module is the only place that knows how each backend must be configured for
the reliability guarantees the README lists (durable OK, nothing lost, effect once):

* SQLite runs in WAL mode with ``synchronous=FULL`` (a commit survives power loss), foreign keys
  on, and every transaction opened through SQLAlchemy starts with ``BEGIN IMMEDIATE``. A deferred
  ``BEGIN`` that reads and then writes can fail with ``SQLITE_BUSY`` regardless of the busy
  timeout, because SQLite cannot upgrade a read lock while another writer is active; taking the
  write lock up front turns that failure into an orderly wait.
* PostgreSQL runs at READ COMMITTED with row locks taken by the callers, and with server-side
  timeouts so that a stuck client can never hold an account row (and thus everyone's quota)
  hostage: ``lock_timeout=2s``, ``statement_timeout=10s``,
  ``idle_in_transaction_session_timeout=30s``.

Callers write with :func:`transaction` or, better, :func:`run_in_transaction`, which retries the
failures that are *expected* under contention (serialization failures, deadlocks, lock timeouts,
``SQLITE_BUSY``) and nothing else.
"""

from __future__ import annotations

import random
import select
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import DBAPIError

__all__ = [
    "POSTGRES_OPTIONS",
    "READ_ONLY",
    "create_engine",
    "is_retryable",
    "migrate",
    "normalise_url",
    "reading",
    "run_in_transaction",
    "transaction",
]

T = TypeVar("T")

POSTGRES_OPTIONS: dict[str, str] = {
    "lock_timeout": "2s",
    "statement_timeout": "10s",
    "idle_in_transaction_session_timeout": "30s",
}
"""Server-side session settings applied to every PostgreSQL connection."""

READ_ONLY = "meterai_read_only"
"""Execution option: ``engine.connect().execution_options(meterai_read_only=True)`` makes a
SQLite connection start its transactions with a plain deferred ``BEGIN`` so that read-only work
does not queue behind writers. Has no effect on PostgreSQL."""

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)

# SQLSTATEs worth a retry: serialization_failure, deadlock_detected, lock_not_available
# (raised by lock_timeout).
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})

# Advisory lock key serialising concurrent ``migrate`` calls from services starting together.
_MIGRATION_LOCK_KEY = 0x6D657465  # "mete"


def normalise_url(url: str | URL) -> URL:
    """Return ``url`` with a driver SQLAlchemy can use, mapping every PostgreSQL spelling
    (``postgres://``, ``postgresql://``, ``postgresql+psycopg2://``) to psycopg 3.

    Heroku-style ``postgres://`` URLs and bare ``postgresql://`` ones are common in deployment
    environments; the platform only ships psycopg 3, so they are all pinned to it here.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+pysqlite") if parsed.drivername == "sqlite" else parsed
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")


def create_engine(url: str | URL, *, pool_size: int = 10, max_overflow: int = 10) -> Engine:
    """Create an :class:`~sqlalchemy.engine.Engine` configured for durable, contended writes.

    :param url: ``sqlite:///path``, ``postgresql+psycopg://...``, ``postgresql://...`` or
        ``postgres://...``.
    :param pool_size: connections kept open per process (PostgreSQL only). Ten covers a gRPC
        server with ``maximum_concurrent_rpcs=16`` where most RPCs finish in milliseconds.
    :param max_overflow: extra short-lived connections allowed above ``pool_size`` under bursts.
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(parsed)
    options = " ".join(f"-c {name}={value}" for name, value in POSTGRES_OPTIONS.items())
    engine = sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # No pre-ping: it costs a round trip on every checkout (a third of a single-statement
        # stamping transaction). _drop_if_server_hung_up does the same job without one.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"options": options},
    )
    event.listen(engine, "checkout", _drop_if_server_hung_up)
    return engine


def _drop_if_server_hung_up(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection the server has already closed.

    An idle connection receives nothing unless the server is ending it: a terminated backend or
    a restarting server sends a FATAL error and closes the socket. So a socket that is readable
    (or broken) at checkout belongs to a dead session, and raising
    :class:`~sqlalchemy.exc.DisconnectionError` makes the pool replace it with a fresh connection
    before the caller sees it. This costs one ``poll`` system call instead of the round trip of
    ``pool_pre_ping``. A connection that dies after checkout still fails on first use, and
    :func:`run_in_transaction` retries that.
    """
    try:
        poller = select.poll()
        poller.register(dbapi_connection.pgconn.socket, select.POLLIN | select.POLLPRI)
        hung_up = bool(poller.poll(0))
    except Exception as error:  # a closed pgconn has no socket
        raise sa.exc.DisconnectionError(f"pooled connection is unusable: {error}") from error
    if hung_up:
        raise sa.exc.DisconnectionError("the server closed this pooled connection")


def _create_sqlite_engine(url: URL) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 5.0, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite (the documented SQLAlchemy recipe) so the
        # "begin" hook below decides how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def reading(engine: Engine) -> Connection:
    """A connection for reads that need no write lock and no transaction of their own.

    On PostgreSQL it runs in autocommit: no BEGIN and no ROLLBACK round trip around a lookup,
    which is a third of the statements on the stamping hot path. On SQLite it begins a plain
    deferred transaction so reads do not queue behind writers (see :data:`READ_ONLY`).
    """
    if engine.dialect.name == "postgresql":
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    return engine.connect().execution_options(**{READ_ONLY: True})


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection inside a write transaction; commit on success, roll back on error.

    This does not retry: a caller whose work is safe to repeat should prefer
    :func:`run_in_transaction`, because under contention PostgreSQL may abort a transaction with
    a deadlock or lock timeout and SQLite may report ``SQLITE_BUSY`` after its busy timeout.
    """
    with engine.begin() as conn:
        yield conn


def is_retryable(error: BaseException) -> bool:
    """Tell whether ``error`` is a transient concurrency failure after which the whole
    transaction can simply be run again."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    message = str(original).lower()
    return "database is locked" in message or "database is busy" in message


def run_in_transaction(
    engine: Engine,
    fn: Callable[[Connection], T],
    *,
    retries: int = 5,
    backoff_s: float = 0.02,
) -> T:
    """Run ``fn(conn)`` in a write transaction, re-running it on transient concurrency failures.

    ``fn`` must only touch the database through ``conn`` (no side effects outside the
    transaction), since it may run more than once. Errors that are not retryable, including every
    domain error, propagate at once.

    :param retries: how many times to re-run after the first attempt.
    :param backoff_s: base of the jittered exponential wait between attempts, which spreads out
        clients that collided on the same rows.
    """
    attempt = 0
    while True:
        try:
            with engine.begin() as conn:
                return fn(conn)
        except DBAPIError as error:
            if attempt >= retries or not is_retryable(error):
                raise
        time.sleep(random.uniform(0, backoff_s * (2**attempt)))
        attempt += 1


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the shared schema to ``revision`` (default: the newest) with Alembic.

    Safe to call from several processes at once on PostgreSQL: a transaction-scoped advisory lock
    makes late starters wait and then find nothing to do. Migrations run in one transaction, so a
    failed upgrade leaves the schema untouched (both backends have transactional DDL).
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "meterai_common:migrations")
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
