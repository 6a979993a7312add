"""Alembic entry script: runs migrations on the connection handed over by ``migrate``.

Only online mode on a caller-supplied connection is supported: the services always migrate
through :func:`meterai_common.db.migrate`, which has already opened the transaction and taken
the migration lock. Running ``alembic`` from the command line with ``-x url=...`` also works for
operators.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise RuntimeError("pass the database with `alembic -x url=...` or use db.migrate()")
    from meterai_common.db import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


_main()
