"""Property: whatever sequence of purchases, payments, cancellations, expiries, holds, commits,
releases and reaps happens, the ledger reconciles and matches a simple model of the quota."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)
from sqlalchemy.engine import Connection, Engine

import meterai_quota as quota
from meterai_common.db import create_engine, migrate

START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW = timedelta(hours=1)
HOLD_TTL = timedelta(minutes=10)

_engine: Engine | None = None


def _shared_engine() -> Engine:
    """One migrated SQLite file for every example: each example works under a fresh reseller,
    and reconciliation covers them all, so earlier examples keep being re-checked."""
    global _engine
    if _engine is None:
        path = Path(tempfile.mkdtemp(prefix="meterai-props-")) / "ledger.db"
        _engine = create_engine(f"sqlite:///{path}")
        migrate(_engine)
    return _engine


class QuotaMachine(RuleBasedStateMachine):
    orders = Bundle("orders")
    jobs = Bundle("jobs")

    @initialize()
    def open_account(self) -> None:
        self.engine = _shared_engine()
        self.now = START
        with self.engine.begin() as conn:
            self.owner = quota.create_reseller(
                conn, f"prop {uuid.uuid4().hex[:8]}", now=self.now
            ).id
        self.available = self.held = self.consumed = 0
        self.order_state: dict[str, tuple[str, int, datetime]] = {}
        self.keys: dict[str, int] = {}
        self.job_state: dict[str, tuple[str, datetime]] = {}
        self.used_references: set[str] = set()

    def _tx(self, fn):  # type: ignore[no-untyped-def]
        with self.engine.begin() as conn:
            return fn(conn)

    @rule(target=orders, quantity=st.integers(1, 4), key=st.sampled_from(["a", "b", "c", "d"]))
    def purchase(self, quantity: int, key: str) -> str:
        if key in self.keys and self.keys[key] != quantity:
            with pytest.raises(quota.IdempotencyConflict):
                self._tx(lambda c: quota.purchase(c, self.owner, quantity, key, now=self.now))
            quantity = self.keys[key]
        order = self._tx(
            lambda c: quota.purchase(
                c, self.owner, quantity, key, now=self.now, payment_window=WINDOW
            )
        )
        if key not in self.keys:
            self.keys[key] = quantity
            self.order_state[order.id] = ("AWAITING_PAYMENT", quantity, self.now + WINDOW)
        return str(order.id)

    @rule(order=orders, exact=st.booleans(), reuse=st.booleans())
    def confirm(self, order: str, exact: bool, reuse: bool) -> None:
        state, quantity, expires = self.order_state[order]
        reference = (
            next(iter(self.used_references)) if reuse and self.used_references else f"pay-{order}"
        )
        amount = quantity * 10_000 + (0 if exact else 1)

        def call(c: Connection) -> quota.Order:
            return quota.confirm_payment(c, order, reference, amount, now=self.now)

        if state == "PAID" and reference == f"pay-{order}":
            assert self._tx(call).state is quota.OrderState.PAID
            return
        try:
            self._tx(call)
        except quota.QuotaError as error:
            assert (
                state != "AWAITING_PAYMENT"
                or not exact
                or self.now >= expires
                or (reference != f"pay-{order}" and isinstance(error, quota.PaymentReferenceReused))
            ), error
            return
        assert state == "AWAITING_PAYMENT" and exact and self.now < expires
        self.order_state[order] = ("PAID", quantity, expires)
        self.used_references.add(reference)
        self.available += quantity

    @rule(order=orders)
    def cancel(self, order: str) -> None:
        state, quantity, expires = self.order_state[order]
        try:
            self._tx(lambda c: quota.cancel_order(c, order, now=self.now))
        except (quota.OrderAlreadyPaid, quota.OrderExpired):
            assert state in ("PAID", "EXPIRED")
            return
        self.order_state[order] = ("CANCELLED", quantity, expires)

    @rule(minutes=st.integers(1, 90))
    def time_passes_and_orders_expire(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self._tx(lambda c: quota.expire_orders(c, self.now))
        for order, (state, quantity, expires) in self.order_state.items():
            if state == "AWAITING_PAYMENT" and expires <= self.now:
                self.order_state[order] = ("EXPIRED", quantity, expires)

    @rule(target=jobs)
    def hold(self) -> str:
        job = uuid.uuid4().hex

        def call(c: Connection) -> str:
            return quota.hold(
                c, owner_id=self.owner, reseller_id=self.owner, job_id=job, now=self.now
            )

        if self.available == 0:
            with pytest.raises(quota.InsufficientQuota):
                self._tx(call)
            return job
        serial = self._tx(call)
        assert self._tx(call) == serial
        self.available -= 1
        self.held += 1
        self.job_state[job] = ("HELD", self.now)
        return job

    @rule(job=jobs)
    def commit(self, job: str) -> None:
        def call(c: Connection) -> str:
            return quota.commit(
                c,
                job_id=job,
                document_digest="0f" * 32,
                document_type="Kuitansi",
                document_number="1",
                document_date=date(2025, 1, 1),
                now=self.now,
            )

        state = self.job_state.get(job, ("NONE", self.now))[0]
        expected = {
            "NONE": quota.HoldNotFound,
            "VOID": quota.HoldReleased,
        }.get(state)
        if expected is not None:
            with pytest.raises(expected):
                self._tx(call)
            return
        self._tx(call)
        if state == "HELD":
            self.held -= 1
            self.consumed += 1
            self.job_state[job] = ("ISSUED", self.now)

    @rule(job=consumes(jobs))
    def release(self, job: str) -> None:
        state = self.job_state.get(job, ("NONE", self.now))[0]

        def call(c: Connection) -> str:
            return quota.release(c, job_id=job, reason="failed", now=self.now)

        expected = {"NONE": quota.HoldNotFound, "ISSUED": quota.AlreadyCommitted}.get(state)
        if expected is not None:
            with pytest.raises(expected):
                self._tx(call)
            return
        self._tx(call)
        if state == "HELD":
            self.held -= 1
            self.available += 1
            self.job_state[job] = ("VOID", self.now)

    @rule()
    def reap(self) -> None:
        reaped: set[str] = set()
        while batch := self._tx(lambda c: quota.reap_expired_holds(c, self.now, HOLD_TTL)):
            reaped.update(batch)
        mine = {
            job
            for job, (state, held_at) in self.job_state.items()
            if state == "HELD" and held_at < self.now - HOLD_TTL
        }
        assert mine <= reaped
        for job in mine:
            self.job_state[job] = ("VOID", self.now)
            self.held -= 1
            self.available += 1

    @invariant()
    def ledger_reconciles_and_matches_the_model(self) -> None:
        with self.engine.connect() as conn:
            report = quota.reconcile(conn)
            balance = quota.balance(conn, self.owner)
        assert report.ok, "\n".join(report.lines())
        assert (balance.available, balance.held, balance.consumed) == (
            self.available,
            self.held,
            self.consumed,
        )
        assert balance.purchased == balance.available + balance.held + balance.consumed


QuotaMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_quota_ledger_conserves_units_under_any_sequence = QuotaMachine.TestCase
