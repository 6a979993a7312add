"""Concurrency guarantees of the quota ledger on PostgreSQL (RELIABILITY.md tests 10-13), with
real threads and real processes, each test ending with a clean reconciliation."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

import pytest
import sqlalchemy as sa
from quota_workers import hold_many
from sqlalchemy.engine import Connection, Engine

import meterai_quota as quota
from meterai_common.db import create_engine, run_in_transaction

T = TypeVar("T")
NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url, pool_size=32, max_overflow=8)
    yield engine
    with engine.connect() as conn:
        report = quota.reconcile(conn)
    engine.dispose()
    assert report.ok, "\n".join(report.lines())


def _together(n: int, fn: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``fn(0..n-1)`` on ``n`` threads released at the same instant; collect results or
    errors."""
    barrier = threading.Barrier(n)

    def call(i: int) -> T | BaseException:
        barrier.wait()
        try:
            return fn(i)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def _funded(engine: Engine, units: int) -> str:
    def setup(conn: Connection) -> str:
        owner = quota.create_reseller(conn, f"Concurrent {uuid.uuid4().hex[:8]}", now=NOW).id
        order = quota.purchase(conn, owner, units, "seed", now=NOW)
        quota.confirm_payment(conn, order.id, f"seed-{owner}", order.total_idr, now=NOW)
        return owner

    return run_in_transaction(engine, setup)


def test_thirty_concurrent_holds_on_ten_units_let_exactly_ten_through(engine: Engine) -> None:
    owner = _funded(engine, 10)
    results = _together(
        30,
        lambda i: run_in_transaction(
            engine,
            lambda c: quota.hold(
                c, owner_id=owner, reseller_id=owner, job_id=f"race-{owner}-{i}", now=NOW
            ),
        ),
    )
    serials = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, quota.InsufficientQuota)]
    assert (len(serials), len(refused)) == (10, 20), [r for r in results if not isinstance(r, str)]
    assert len(set(serials)) == 10
    with engine.connect() as conn:
        balance = quota.balance(conn, owner)
    assert (balance.available, balance.held) == (0, 10)


def test_twenty_concurrent_purchases_with_one_key_make_one_order(engine: Engine) -> None:
    reseller = run_in_transaction(
        engine, lambda c: quota.create_reseller(c, f"Buyer {uuid.uuid4().hex[:8]}").id
    )
    results = _together(
        20, lambda i: run_in_transaction(engine, lambda c: quota.purchase(c, reseller, 7, "once"))
    )
    assert all(isinstance(r, quota.Order) for r in results), results
    assert len({r.id for r in results if isinstance(r, quota.Order)}) == 1
    with engine.connect() as conn:
        assert (
            conn.scalar(
                sa.text("SELECT count(*) FROM quota_orders WHERE reseller_id = :r"), {"r": reseller}
            )
            == 1
        )
    with pytest.raises(quota.IdempotencyConflict):
        run_in_transaction(engine, lambda c: quota.purchase(c, reseller, 8, "once"))


def test_a_payment_confirmed_five_times_concurrently_and_after_a_restart_credits_once(
    engine: Engine, postgres_url: str
) -> None:
    reseller = run_in_transaction(
        engine, lambda c: quota.create_reseller(c, f"Payer {uuid.uuid4().hex[:8]}").id
    )
    order = run_in_transaction(engine, lambda c: quota.purchase(c, reseller, 4, "pay"))
    reference = f"va-{uuid.uuid4()}"

    def confirm(target: Engine) -> quota.Order:
        return run_in_transaction(
            target, lambda c: quota.confirm_payment(c, order.id, reference, 40_000)
        )

    results = _together(5, lambda i: confirm(engine))
    assert all(isinstance(r, quota.Order) and r.state is quota.OrderState.PAID for r in results)
    engine.dispose()
    restarted = create_engine(postgres_url)
    try:
        assert confirm(restarted).payment_reference == reference
        with restarted.connect() as conn:
            balance = quota.balance(conn, reseller)
            credits = conn.scalar(
                sa.text("SELECT count(*) FROM quota_transactions WHERE order_id = :o"),
                {"o": order.id},
            )
    finally:
        restarted.dispose()
    assert (balance.purchased, balance.available, credits) == (4, 4, 1)


def test_four_processes_allocate_two_thousand_distinct_serials_past_a_locked_row(
    engine: Engine, postgres_url: str
) -> None:
    owner = _funded(engine, 2002)
    blocker_serial = run_in_transaction(
        engine,
        lambda c: quota.hold(c, owner_id=owner, reseller_id=owner, job_id=f"blk-{owner}", now=NOW),
    )
    with engine.connect() as blocker:
        # A worker stuck mid-commit keeps one serial row locked; allocation must not wait for it.
        # The server would end an idle transaction after 30 s: this one must outlive the batch.
        blocker.execute(sa.text("SET LOCAL idle_in_transaction_session_timeout = 0"))
        blocker.execute(
            sa.text("SELECT serial FROM quota_serials WHERE serial = :s FOR UPDATE"),
            {"s": blocker_serial},
        )
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            batches = pool.starmap(hold_many, [(postgres_url, owner, 500)] * 4)
        blocker.rollback()
    serials = [serial for batch in batches for serial in batch]
    assert len(serials) == len(set(serials)) == 2000
    assert all(quota.is_well_formed(serial) for serial in serials)
    with pytest.raises(quota.SerialCollision):
        run_in_transaction(
            engine,
            lambda c: quota.hold(
                c, owner_id=owner, reseller_id=owner, job_id="dup", serial=serials[0], now=NOW
            ),
        )
    with engine.connect() as conn:
        balance = quota.balance(conn, owner)
    assert (balance.available, balance.held) == (1, 2001)


def test_concurrent_holds_and_commits_on_one_owner_neither_deadlock_nor_lose_units(
    engine: Engine,
) -> None:
    owner = _funded(engine, 200)
    digest = "7f" * 32

    def stamp_one(job_id: str) -> str:
        serial = run_in_transaction(
            engine,
            lambda c: quota.hold(c, owner_id=owner, reseller_id=owner, job_id=job_id, now=NOW),
        )
        run_in_transaction(
            engine,
            lambda c: quota.commit(
                c,
                job_id=job_id,
                document_digest=digest,
                document_type="Surat Perjanjian",
                document_number="",
                document_date=None,
                now=NOW,
            ),
        )
        return serial

    def stamp(i: int) -> str:
        return ",".join(stamp_one(f"mix-{owner}-{i}-{n}") for n in range(10))

    results = _together(16, stamp)
    assert all(isinstance(r, str) for r in results), results
    with engine.connect() as conn:
        balance = quota.balance(conn, owner)
    assert (balance.available, balance.held, balance.consumed) == (40, 0, 160)


def test_a_hold_racing_the_same_job_waits_and_replays_without_a_second_debit(
    engine: Engine,
) -> None:
    owner = _funded(engine, 5)
    job_id = f"twin-{owner}"
    with engine.connect() as first:
        serial = quota.hold(first, owner_id=owner, reseller_id=owner, job_id=job_id, now=NOW)
        # The second attempt cannot see the first one's uncommitted serial, so it debits, waits
        # on the job id's unique index, finds it taken once the first commits, and gives back.
        with ThreadPoolExecutor(max_workers=1) as pool:
            twin = pool.submit(
                run_in_transaction,
                engine,
                lambda c: quota.hold(c, owner_id=owner, reseller_id=owner, job_id=job_id, now=NOW),
            )
            with pytest.raises(TimeoutError):
                twin.result(timeout=0.5)
            first.commit()
            assert twin.result(timeout=10) == serial
    with engine.connect() as conn:
        balance = quota.balance(conn, owner)
    assert (balance.available, balance.held) == (4, 1)
