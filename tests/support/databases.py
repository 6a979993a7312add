"""Database fixtures: a migrated PostgreSQL database per session, a SQLite file per test, and
``database_url`` running a test once on each backend.

PostgreSQL must be reachable on 127.0.0.1:5432 (trust auth, user ``postgres``); if it is not, the
tests that need it FAIL with the reason, they are never skipped: a skipped durability test is a
guarantee nobody checked.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from meterai_common.db import create_engine, migrate

__all__ = ["database_url", "migrated_postgres_database", "postgres_url", "sqlite_url"]

POSTGRES_ADMIN_URL = os.environ.get(
    "METERAI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
"""Maintenance database used to create and drop the per-session test database."""


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


@contextmanager
def migrated_postgres_database(
    prefix: str = "meterai_test", before_drop: Callable[[], None] = lambda: None
) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of our own; dropped afterwards.

    :param before_drop: runs first at teardown (fault tests wait for a restarted server).
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is required on {POSTGRES_ADMIN_URL} and is not reachable: {error}",
            pytrace=False,
        )
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    try:
        yield url
    finally:
        before_drop()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database, dropped at the end of the session."""
    with migrated_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a migrated SQLite database file private to the test."""
    url = f"sqlite:///{tmp_path / 'meterai.db'}"
    engine = create_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once per backend. The PostgreSQL database is shared by the
    session, so tests must create their own resellers rather than assume an empty database."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))
