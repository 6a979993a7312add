"""Specification of the quota service against a real database, once on SQLite and once on
PostgreSQL: the same calls must behave the same on both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import meterai_quota as quota
from meterai_common.db import create_engine, run_in_transaction
from meterai_quota.adapters.tables import serials

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DIGEST = "ab" * 32


_prefix = ""


def J(label: str) -> str:
    """A job id unique to the running test: the PostgreSQL database is shared by the session."""
    return f"{_prefix}-{label}"


@pytest.fixture(autouse=True)
def _unique_job_ids() -> None:
    global _prefix
    _prefix = uuid.uuid4().hex[:12]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def _reseller(engine: Engine, name: str | None = None, parent_id: str | None = None) -> str:
    """A reseller; without a name, a fresh one (names are unique, the database is shared)."""
    chosen = name or f"Toko Meterai {uuid.uuid4().hex[:8]}"
    return run_in_transaction(
        engine, lambda conn: quota.create_reseller(conn, chosen, parent_id=parent_id, now=NOW).id
    )


def _funded(engine: Engine, units: int) -> str:
    reseller_id = _reseller(engine)

    def buy(conn: Connection) -> None:
        order = quota.purchase(conn, reseller_id, units, "first", now=NOW)
        quota.confirm_payment(conn, order.id, f"pay-{uuid.uuid4()}", order.total_idr, now=NOW)

    run_in_transaction(engine, buy)
    return reseller_id


def _in(engine: Engine, fn):  # type: ignore[no-untyped-def]
    return run_in_transaction(engine, fn)


def _assert_reconciled(engine: Engine) -> None:
    with engine.connect() as conn:
        report = quota.reconcile(conn)
    assert report.ok, "\n".join(report.lines())


def _hold(conn: Connection, owner: str, job: str, serial: str | None = None) -> str:
    return quota.hold(
        conn, owner_id=owner, reseller_id=owner, job_id=J(job), serial=serial, now=NOW
    )


def _commit(
    conn: Connection, job: str, digest: str = DIGEST, trusted_time: datetime | None = None
) -> str:
    return quota.commit(
        conn,
        job_id=J(job),
        document_digest=digest,
        document_type="Surat Perjanjian",
        document_number="001/SP/2025",
        document_date=date(2025, 2, 28),
        now=NOW,
        trusted_time=trusted_time,
    )


class TestPurchasing:
    def test_an_order_awaits_payment_at_ten_thousand_rupiah_a_stamp(self, engine: Engine) -> None:
        reseller = _reseller(engine)
        order = _in(engine, lambda c: quota.purchase(c, reseller, 5, "k1", now=NOW))
        assert order.state is quota.OrderState.AWAITING_PAYMENT
        assert (order.unit_price_idr, order.total_idr) == (10_000, 50_000)
        assert order.expires_at == NOW + timedelta(hours=24)

    def test_replaying_a_purchase_returns_the_same_order(self, engine: Engine) -> None:
        reseller = _reseller(engine)
        first = _in(engine, lambda c: quota.purchase(c, reseller, 5, "k1", now=NOW))
        again = _in(engine, lambda c: quota.purchase(c, reseller, 5, "k1", now=NOW))
        assert again == first

    def test_the_same_key_for_another_quantity_conflicts(self, engine: Engine) -> None:
        reseller = _reseller(engine)
        _in(engine, lambda c: quota.purchase(c, reseller, 5, "k1", now=NOW))
        with pytest.raises(quota.IdempotencyConflict) as caught:
            _in(engine, lambda c: quota.purchase(c, reseller, 6, "k1", now=NOW))
        assert caught.value.code == "ALREADY_EXISTS"

    def test_a_payment_credits_the_order_once_however_often_it_is_delivered(
        self, engine: Engine
    ) -> None:
        reseller = _reseller(engine)
        order = _in(engine, lambda c: quota.purchase(c, reseller, 3, "k", now=NOW))
        for _ in range(3):
            paid = _in(
                engine, lambda c: quota.confirm_payment(c, order.id, "pay-1", 30_000, now=NOW)
            )
            assert paid.state is quota.OrderState.PAID
        assert _in(engine, lambda c: quota.balance(c, reseller)).available == 3
        _assert_reconciled(engine)

    def test_a_payment_reference_cannot_pay_two_orders(self, engine: Engine) -> None:
        reseller = _reseller(engine)
        one = _in(engine, lambda c: quota.purchase(c, reseller, 1, "a", now=NOW))
        two = _in(engine, lambda c: quota.purchase(c, reseller, 1, "b", now=NOW))
        ref = f"pay-{uuid.uuid4()}"
        _in(engine, lambda c: quota.confirm_payment(c, one.id, ref, 10_000, now=NOW))
        with pytest.raises(quota.PaymentReferenceReused):
            _in(engine, lambda c: quota.confirm_payment(c, two.id, ref, 10_000, now=NOW))

    @pytest.mark.parametrize(
        ("amount", "later", "error"),
        [
            (9_999, timedelta(0), quota.AmountMismatch),
            (10_000, timedelta(hours=24), quota.OrderExpired),
        ],
    )
    def test_wrong_or_late_payments_credit_nothing(
        self, engine: Engine, amount: int, later: timedelta, error: type[Exception]
    ) -> None:
        reseller = _reseller(engine)
        order = _in(engine, lambda c: quota.purchase(c, reseller, 1, "k", now=NOW))
        with pytest.raises(error):
            _in(engine, lambda c: quota.confirm_payment(c, order.id, "p", amount, now=NOW + later))
        assert _in(engine, lambda c: quota.balance(c, reseller)).purchased == 0

    def test_cancelled_and_expired_orders_cannot_be_paid(self, engine: Engine) -> None:
        reseller = _reseller(engine)
        cancelled = _in(engine, lambda c: quota.purchase(c, reseller, 1, "c", now=NOW))
        stale = _in(engine, lambda c: quota.purchase(c, reseller, 1, "s", now=NOW))
        _in(engine, lambda c: quota.cancel_order(c, cancelled.id, now=NOW))
        assert _in(engine, lambda c: quota.cancel_order(c, cancelled.id)).state.value == "CANCELLED"
        assert _in(engine, lambda c: quota.expire_orders(c, NOW + timedelta(days=2))) >= 1
        with pytest.raises(quota.OrderCancelled):
            _in(engine, lambda c: quota.confirm_payment(c, cancelled.id, "x1", 10_000, now=NOW))
        with pytest.raises(quota.OrderExpired):
            _in(engine, lambda c: quota.confirm_payment(c, stale.id, "x2", 10_000, now=NOW))

    def test_orders_are_listed_newest_first_in_pages(self, engine: Engine) -> None:
        reseller = _reseller(engine)
        for i in range(45):
            _in(
                engine,
                lambda c, i=i: quota.purchase(
                    c, reseller, 1, f"k{i}", now=NOW + timedelta(seconds=i // 2)
                ),
            )
        seen: list[str] = []
        token: str | None = None
        while True:
            page = _in(engine, lambda c, t=token: quota.list_orders(c, reseller, page_token=t))
            seen += [order.idempotency_key for order in page.items]
            token = page.next_page_token
            if token is None:
                break
        assert len(seen) == len(set(seen)) == 45
        created = [int(key[1:]) // 2 for key in seen]
        assert created == sorted(created, reverse=True)


class TestStampingProtocol:
    def test_hold_then_commit_issues_the_serial_and_consumes_a_unit(self, engine: Engine) -> None:
        owner = _funded(engine, 2)
        serial = _in(engine, lambda c: _hold(c, owner, "job-1"))
        assert quota.is_well_formed(serial)
        assert _in(engine, lambda c: quota.balance(c, owner)).held == 1
        assert _in(engine, lambda c: _commit(c, "job-1")) == serial
        balance = _in(engine, lambda c: quota.balance(c, owner))
        assert (balance.available, balance.held, balance.consumed, balance.purchased) == (
            1,
            0,
            1,
            2,
        )
        info = _in(engine, lambda c: quota.verify_serial(c, serial))
        assert info.status is quota.SerialStatus.ISSUED
        assert (info.document_digest, info.document_type) == (DIGEST, "Surat Perjanjian")
        assert (info.reseller_id, info.reseller_name, info.stamped_at) == (
            owner,
            _in(engine, lambda c: quota.get_reseller(c, owner).name),
            NOW,
        )
        assert info.reseller_name.startswith("Toko Meterai ")
        _assert_reconciled(engine)

    def test_commit_records_the_seal_s_trusted_time_beside_the_platform_s_own(
        self, engine: Engine
    ) -> None:
        owner = _funded(engine, 2)
        certified = NOW - timedelta(seconds=3, microseconds=250_000)
        timestamped = _in(engine, lambda c: _hold(c, owner, "b-t"))
        plain = _in(engine, lambda c: _hold(c, owner, "b-b"))
        _in(engine, lambda c: _commit(c, "b-t", trusted_time=certified))
        _in(engine, lambda c: _commit(c, "b-b"))
        times = dict(
            _in(
                engine,
                lambda c: c.execute(
                    sa.select(serials.c.serial, serials.c.trusted_time).where(
                        serials.c.serial.in_([timestamped, plain])
                    )
                ).all(),
            )
        )
        assert times == {timestamped: certified, plain: None}

    def test_a_naive_trusted_time_is_refused(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        _in(engine, lambda c: _hold(c, owner, "naive"))
        with pytest.raises(quota.InvalidArgument, match="trusted time"):
            _in(engine, lambda c: _commit(c, "naive", trusted_time=datetime(2025, 3, 1, 9)))

    def test_every_step_is_idempotent_per_job(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        serial = _in(engine, lambda c: _hold(c, owner, "job-1"))
        assert _in(engine, lambda c: _hold(c, owner, "job-1")) == serial
        assert _in(engine, lambda c: _commit(c, "job-1")) == serial
        assert _in(engine, lambda c: _commit(c, "job-1")) == serial
        assert _in(engine, lambda c: _hold(c, owner, "job-1")) == serial
        assert _in(engine, lambda c: quota.balance(c, owner)).consumed == 1
        with pytest.raises(quota.IdempotencyConflict):
            _in(engine, lambda c: _commit(c, "job-1", digest="cd" * 32))
        _assert_reconciled(engine)

    def test_a_document_without_number_or_date_can_be_committed(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        serial = _in(engine, lambda c: _hold(c, owner, "job-1"))

        def commit_bare(conn: Connection) -> str:
            return quota.commit(
                conn,
                job_id=J("job-1"),
                document_digest=DIGEST,
                document_type="Surat Pernyataan",
                document_number="",
                document_date=None,
                now=NOW,
            )

        assert _in(engine, commit_bare) == serial
        assert _in(engine, commit_bare) == serial
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text(
                    "SELECT status, document_number, document_date FROM quota_serials"
                    " WHERE serial = :s"
                ),
                {"s": serial},
            ).one()
        assert tuple(stored) == ("ISSUED", None, None)
        assert _in(engine, lambda c: quota.balance(c, owner)).consumed == 1
        _assert_reconciled(engine)

    def test_a_naive_now_is_refused_before_anything_is_written(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        naive = NOW.replace(tzinfo=None)
        with pytest.raises(quota.InvalidArgument):
            _in(
                engine,
                lambda c: quota.hold(
                    c, owner_id=owner, reseller_id=owner, job_id=J("job-1"), now=naive
                ),
            )
        _in(engine, lambda c: _hold(c, owner, "job-1"))
        with pytest.raises(quota.InvalidArgument):
            _in(
                engine,
                lambda c: quota.commit(
                    c,
                    job_id=J("job-1"),
                    document_digest=DIGEST,
                    document_type="Surat Pernyataan",
                    document_number="",
                    document_date=None,
                    now=naive,
                ),
            )
        assert _in(engine, lambda c: quota.balance(c, owner)).held == 1

    def test_an_unknown_owner_is_not_found(self, engine: Engine) -> None:
        with pytest.raises(quota.ResellerNotFound):
            _in(engine, lambda c: _hold(c, str(uuid.uuid4()), "job-1"))

    def test_a_refused_hold_leaves_the_callers_transaction_usable(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        _in(engine, lambda c: _hold(c, owner, "job-1"))

        def refused_then_more_work(conn: Connection) -> str:
            with pytest.raises(quota.InsufficientQuota):
                _hold(conn, owner, "job-2")
            return _commit(conn, "job-1")

        assert _in(engine, refused_then_more_work)
        balance = _in(engine, lambda c: quota.balance(c, owner))
        assert (balance.available, balance.held, balance.consumed) == (0, 0, 1)
        _assert_reconciled(engine)

    def test_a_hold_without_available_quota_fails_and_writes_nothing(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        _in(engine, lambda c: _hold(c, owner, "job-1"))
        with pytest.raises(quota.InsufficientQuota) as caught:
            _in(engine, lambda c: _hold(c, owner, "job-2"))
        assert caught.value.code == "FAILED_PRECONDITION"
        with pytest.raises(quota.HoldNotFound):
            _in(engine, lambda c: _commit(c, "job-2"))
        _assert_reconciled(engine)

    def test_a_sub_account_spends_its_parents_quota_but_keeps_its_jobs(
        self, engine: Engine
    ) -> None:
        owner = _funded(engine, 1)
        branch = _reseller(engine, "Cabang Bandung", parent_id=owner)
        principal = _in(
            engine, lambda c: quota.authenticate(c, quota.issue_api_key(c, branch, "reseller"))
        )
        assert (principal.reseller_id, principal.quota_owner_id) == (branch, owner)
        serial = _in(
            engine,
            lambda c: quota.hold(
                c,
                owner_id=principal.quota_owner_id,
                reseller_id=principal.reseller_id,
                job_id=J("job-b"),
                now=NOW,
            ),
        )
        _in(engine, lambda c: _commit(c, "job-b"))
        assert _in(engine, lambda c: quota.balance(c, branch)).consumed == 1
        assert (
            _in(engine, lambda c: quota.verify_serial(c, serial)).reseller_name == "Cabang Bandung"
        )

    def test_release_returns_the_unit_and_voids_the_serial_forever(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        serial = _in(engine, lambda c: _hold(c, owner, "job-1"))
        assert (
            _in(engine, lambda c: quota.release(c, job_id=J("job-1"), reason="bad pdf", now=NOW))
            == serial
        )
        _in(engine, lambda c: quota.release(c, job_id=J("job-1"), reason="again", now=NOW))
        balance = _in(engine, lambda c: quota.balance(c, owner))
        assert (balance.available, balance.held, balance.refunded) == (1, 0, 1)
        assert (
            _in(engine, lambda c: quota.verify_serial(c, serial)).status is quota.SerialStatus.VOID
        )
        with pytest.raises(quota.HoldReleased):
            _in(engine, lambda c: _commit(c, "job-1"))
        with pytest.raises(quota.HoldReleased):
            _in(engine, lambda c: _hold(c, owner, "job-1"))
        with pytest.raises(quota.SerialCollision):
            _in(engine, lambda c: _hold(c, owner, "job-2", serial=serial))
        _assert_reconciled(engine)

    def test_available_is_the_balance_that_a_hold_spends(self, engine: Engine) -> None:
        owner = _funded(engine, 3)
        branch = _reseller(engine, "Cabang Medan", parent_id=owner)
        _in(engine, lambda c: _hold(c, owner, "job-1"))
        _in(engine, lambda c: _hold(c, owner, "job-2"))
        _in(engine, lambda c: quota.release(c, job_id=J("job-2"), reason="bad pdf", now=NOW))
        for who in (owner, branch):
            assert _in(engine, lambda c, who=who: quota.available(c, who)) == 2
            assert _in(engine, lambda c, who=who: quota.balance(c, who)).available == 2
        with pytest.raises(quota.ResellerNotFound):
            _in(engine, lambda c: quota.available(c, str(uuid.uuid4())))

    def test_refunds_are_counted_per_owner(self, engine: Engine) -> None:
        owner, other = _funded(engine, 3), _funded(engine, 3)
        for label in ("a", "b"):
            _in(engine, lambda c, label=label: _hold(c, owner, f"mine-{label}"))
            _in(
                engine,
                lambda c, label=label: quota.release(
                    c, job_id=J(f"mine-{label}"), reason="bad pdf", now=NOW
                ),
            )
        _in(engine, lambda c: _hold(c, other, "theirs"))
        _in(engine, lambda c: quota.release(c, job_id=J("theirs"), reason="bad pdf", now=NOW))
        _in(engine, lambda c: _hold(c, owner, "kept"))
        _in(engine, lambda c: _commit(c, "kept"))
        assert _in(engine, lambda c: quota.balance(c, owner)).refunded == 2
        assert _in(engine, lambda c: quota.balance(c, other)).refunded == 1
        _assert_reconciled(engine)

    def test_a_committed_job_cannot_be_released(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        _in(engine, lambda c: _hold(c, owner, "job-1"))
        _in(engine, lambda c: _commit(c, "job-1"))
        with pytest.raises(quota.AlreadyCommitted):
            _in(engine, lambda c: quota.release(c, job_id=J("job-1"), reason="late", now=NOW))

    def test_a_serial_drawn_in_advance_is_the_one_allocated(self, engine: Engine) -> None:
        owner = _funded(engine, 1)
        drawn = quota.generate_serial()
        assert _in(engine, lambda c: _hold(c, owner, "job-1", serial=drawn)) == drawn
        with pytest.raises(quota.MalformedSerial):
            _in(engine, lambda c: _hold(c, owner, "job-2", serial="NOT-A-SERIAL"))

    def test_stale_holds_are_reaped_and_fresh_ones_kept(self, engine: Engine) -> None:
        owner = _funded(engine, 2)
        _in(engine, lambda c: _hold(c, owner, "old"))
        _in(
            engine,
            lambda c: quota.hold(
                c,
                owner_id=owner,
                reseller_id=owner,
                job_id=J("new"),
                now=NOW + timedelta(minutes=30),
            ),
        )
        reaped = _in(
            engine,
            lambda c: quota.reap_expired_holds(
                c, NOW + timedelta(minutes=31), timedelta(minutes=15)
            ),
        )
        assert J("old") in reaped and J("new") not in reaped
        assert _in(engine, lambda c: quota.balance(c, owner)).held == 1
        _assert_reconciled(engine)

    def test_the_callers_rollback_undoes_the_hold(self, engine: Engine) -> None:
        owner = _funded(engine, 1)

        def hold_then_fail(conn: Connection) -> None:
            _hold(conn, owner, "job-1")
            raise RuntimeError("job row insert failed")

        with pytest.raises(RuntimeError):
            _in(engine, hold_then_fail)
        assert _in(engine, lambda c: quota.balance(c, owner)).available == 1
        with pytest.raises(quota.HoldNotFound):
            _in(engine, lambda c: quota.release(c, job_id=J("job-1"), reason="x", now=NOW))


class TestSerialVerification:
    def test_a_malformed_serial_is_rejected_before_any_lookup(self, engine: Engine) -> None:
        with pytest.raises(quota.MalformedSerial) as caught:
            _in(engine, lambda c: quota.verify_serial(c, "0" * 22))
        assert caught.value.code == "INVALID_ARGUMENT"

    def test_a_well_formed_unknown_serial_is_unknown(self, engine: Engine) -> None:
        info = _in(engine, lambda c: quota.verify_serial(c, quota.generate_serial()))
        assert info.status is quota.SerialStatus.UNKNOWN and info.reseller_id is None


class TestApiKeys:
    def test_a_key_authenticates_until_revoked(self, engine: Engine) -> None:
        reseller = _reseller(engine)
        key = _in(engine, lambda c: quota.issue_api_key(c, reseller))
        assert _in(engine, lambda c: quota.authenticate(c, key)).role is quota.Role.RESELLER
        assert _in(engine, lambda c: quota.revoke_api_key(c, key))
        with pytest.raises(quota.Unauthenticated):
            _in(engine, lambda c: quota.authenticate(c, key))

    def test_only_a_hash_of_the_key_is_stored(self, engine: Engine) -> None:
        reseller = _reseller(engine)
        key = _in(engine, lambda c: quota.issue_api_key(c, reseller))
        with engine.connect() as conn:
            dumped = " ".join(
                str(row) for row in conn.execute(sa.text("SELECT * FROM quota_api_keys"))
            )
        assert key not in dumped

    def test_operators_are_not_resellers(self, engine: Engine) -> None:
        key = _in(engine, lambda c: quota.issue_api_key(c, None, "operator"))
        principal = _in(engine, lambda c: quota.authenticate(c, key))
        assert principal == quota.Principal(None, None, quota.Role.OPERATOR)
        reseller = _reseller(engine)
        with pytest.raises(quota.InvalidArgument):
            _in(engine, lambda c: quota.issue_api_key(c, reseller, "operator"))

    @pytest.mark.parametrize("key", ["", "nope", "mtk_" + "A" * 43])
    def test_unknown_keys_are_unauthenticated(self, engine: Engine, key: str) -> None:
        with pytest.raises(quota.Unauthenticated):
            _in(engine, lambda c: quota.authenticate(c, key))


class TestLedgerEntries:
    def test_entries_page_through_the_owners_history(self, engine: Engine) -> None:
        owner = _funded(engine, 30)
        for i in range(30):
            _in(engine, lambda c, i=i: _hold(c, owner, f"job-{i}"))
        ids: list[int] = []
        token = None
        while True:
            page = _in(
                engine, lambda c, t=token: quota.list_entries(c, owner, page_size=25, page_token=t)
            )
            ids += [entry.id for entry in page.items]
            token = page.next_page_token
            if token is None:
                break
        assert len(ids) == 62 and ids == sorted(ids, reverse=True)
        with pytest.raises(quota.InvalidPageToken):
            _in(engine, lambda c: quota.list_entries(c, owner, page_token="garbage!"))
