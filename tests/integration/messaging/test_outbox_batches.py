"""The relay sends rows of a grouped name together, up to the group size, in order, and the
other rows one by one; a group that fails to publish stays pending as a whole (on SQLite and
PostgreSQL). Each test uses names of its own, so rows of other tests sharing the PostgreSQL
database are not its business."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from meterai_common.db import create_engine, transaction
from meterai_common.outbox import (
    OutboxMessage,
    OutboxRelay,
    enqueue_event,
    enqueue_task,
    pending_count,
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


class Broker:
    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.failing = False

    def one(self, message: OutboxMessage) -> None:
        self.many([message])

    def many(self, messages: Sequence[OutboxMessage]) -> None:
        if self.failing:
            raise ConnectionError("broker down")
        self.sent.append([m.task_kwargs()["n"] if m.kind == "task" else m.name for m in messages])


def _names() -> tuple[str, str]:
    """A task name and an event name no other test writes."""
    return f"test.sign.{uuid.uuid4().hex}", f"Event{uuid.uuid4().hex}"


def _relay(engine: Engine, broker: Broker, task: str, event: str) -> OutboxRelay:
    return OutboxRelay(
        engine,
        broker.one,
        names=(task, event),
        dispatch_many=broker.many,
        grouped=(task,),
        group_size=4,
    )


def test_rows_of_a_grouped_name_leave_in_groups_and_events_one_by_one(engine: Engine) -> None:
    task, event = _names()
    with transaction(engine) as conn:
        for n in range(10):
            enqueue_task(conn, task, {"n": n}, datetime.now(UTC))
            if n in (2, 6):
                enqueue_event(conn, event, b"e", datetime.now(UTC))
    broker = Broker()
    assert _relay(engine, broker, task, event).run_once() == 12
    assert broker.sent == [[0, 1, 2, 3], [event], [4, 5, 6, 7], [event], [8, 9]]
    assert pending_count(engine, names=(task, event)) == 0


def test_a_group_the_broker_does_not_take_stays_pending_whole(engine: Engine) -> None:
    task, event = _names()
    with transaction(engine) as conn:
        for n in range(3):
            enqueue_task(conn, task, {"n": n}, datetime.now(UTC))
    broker = Broker()
    broker.failing = True
    relay = _relay(engine, broker, task, event)
    assert relay.run_once() == 0
    assert pending_count(engine, names=(task,)) == 3
    broker.failing = False
    assert relay.run_once() == 3
    assert broker.sent == [[0, 1, 2]]
