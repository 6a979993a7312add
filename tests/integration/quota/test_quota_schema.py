"""The hand-written migrations and the query-side table definitions describe the same schema,
for each service's tables (quota's, the webhook dispatcher's)."""

from __future__ import annotations

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData

from meterai_common.db import create_engine
from meterai_quota.adapters.tables import metadata as quota_metadata
from meterai_webhooks.tables import metadata as webhook_metadata


@pytest.mark.parametrize(
    ("metadata", "prefix"),
    [(quota_metadata, "quota_"), (webhook_metadata, "webhook_")],
    ids=["quota", "webhooks"],
)
def test_migrations_create_exactly_the_tables_the_code_queries(
    database_url: str, metadata: MetaData, prefix: str
) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, _parent: (
                        kind != "table" or (name or "").startswith(prefix)
                    ),
                },
            )
            with warnings.catch_warnings():
                # SQLite cannot reflect expression indexes (unique lower(name)), so alembic
                # skips comparing them there, with a warning; PostgreSQL compares them, and
                # below SQLite is checked to have each one by name.
                warnings.filterwarnings("ignore", message=".*expression-based index.*")
                differences = compare_metadata(context, metadata)
            if conn.dialect.name == "sqlite":
                expression_indexes = {
                    str(index.name)
                    for table in metadata.tables.values()
                    for index in table.indexes
                    if any(not isinstance(e, Column) for e in index.expressions)
                }
                present = set(
                    conn.exec_driver_sql(
                        "SELECT name FROM sqlite_master WHERE type = 'index'"
                    ).scalars()
                )
                assert expression_indexes <= present, expression_indexes - present
    finally:
        engine.dispose()
    assert differences == []
