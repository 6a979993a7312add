"""Published outbox rows are deleted once they are older than the retention period, by the
relays themselves; an unpublished row is never deleted, however old (on SQLite and PostgreSQL).

The rows here are dated in the year 2000, so purging with a clock set to then touches no row
of the other tests sharing the session's PostgreSQL database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update

from meterai_common.db import create_engine, transaction
from meterai_common.outbox import (
    OutboxMessage,
    OutboxRelay,
    enqueue_event,
    outbox_table,
    purge_published,
)

THEN = datetime(2000, 1, 10, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def _row(engine: Engine, published_at: datetime | None) -> int:
    """One outbox row written a week before THEN, published at ``published_at`` (or not)."""
    with transaction(engine) as conn:
        message_id = enqueue_event(conn, "DigestSigned", b"payload", THEN - 7 * DAY)
        conn.execute(
            update(outbox_table)
            .where(outbox_table.c.message_id == message_id)
            .values(published_at=published_at)
        )
        return int(
            conn.execute(
                select(outbox_table.c.id).where(outbox_table.c.message_id == message_id)
            ).scalar_one()
        )


def _remaining(engine: Engine, ids: list[int]) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox_table.c.id).where(outbox_table.c.id.in_(ids))).all()
    return {row.id for row in rows}


def test_rows_published_before_the_retention_period_are_deleted_and_no_others(
    engine: Engine,
) -> None:
    expired = [_row(engine, THEN - 2 * DAY), _row(engine, THEN - DAY - timedelta(seconds=1))]
    recent = _row(engine, THEN - DAY + timedelta(seconds=1))
    unpublished = _row(engine, None)

    deleted = purge_published(engine, DAY, now=THEN)

    assert deleted == 2
    assert _remaining(engine, [*expired, recent, unpublished]) == {recent, unpublished}
    with transaction(engine) as conn:
        conn.execute(outbox_table.delete().where(outbox_table.c.id.in_([recent, unpublished])))


def test_a_purge_deletes_every_expired_row_in_bounded_batches(engine: Engine) -> None:
    expired = [_row(engine, THEN - 2 * DAY) for _ in range(7)]

    assert purge_published(engine, DAY, batch=3, now=THEN) == 7
    assert _remaining(engine, expired) == set()


def test_the_relay_deletes_expired_rows_on_its_own_schedule(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    expired = _row(engine, datetime.now(UTC) - 2 * DAY)
    unpublished = _row(engine, None)
    published: list[OutboxMessage] = []
    relay = OutboxRelay(
        engine, published.append, poll_interval=0.02, retention=DAY, purge_every_s=0.05
    )
    relay.start()
    try:
        deadline = time.monotonic() + 10
        while _remaining(engine, [expired]) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        relay.stop()
        engine.dispose()
    assert _remaining(engine, [expired, unpublished]) == {unpublished}
    # The unpublished row was published meanwhile, and stays (it is not a day old).
    assert [message.id for message in published] == [unpublished]
