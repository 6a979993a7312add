"""PostgreSQL dying in the middle of the stamping protocol (RELIABILITY.md test 9).

A backend is killed with ``pg_terminate_backend`` while a ``hold`` or ``commit`` is half done,
either inside its single statement (paused on a row lock the test holds) or between statements
(its transaction still open), and then the whole server is restarted with ``-m immediate``
while several clients are stamping. Afterwards no partial hold or commit may remain, the ledger
must reconcile, and retrying a job with the same id must debit it exactly once.

The restart test leaves the server running and accepting connections before it ends; engines
created before it (including the session's) recover by themselves, because the pool drops
connections the server closed (``meterai_common.db``).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

import meterai_quota as quota
from meterai_common.db import create_engine, run_in_transaction

# Restarts the PostgreSQL or RabbitMQ every other test shares: never beside another test.
pytestmark = pytest.mark.disrupts_shared_services

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DIGEST = "9d" * 32
RESTART = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart", "-m", "immediate"]


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url, pool_size=8, max_overflow=4)
    yield engine
    engine.dispose()


@pytest.fixture
def admin(postgres_url: str) -> Iterator[Engine]:
    """Autocommit connections for the test's own moves: locks, terminations, checks."""
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    yield engine
    engine.dispose()


def _funded(engine: Engine, units: int) -> str:
    def setup(conn: Connection) -> str:
        owner = quota.create_reseller(conn, f"Faulty {uuid.uuid4().hex[:8]}", now=NOW).id
        order = quota.purchase(conn, owner, units, "seed", now=NOW)
        quota.confirm_payment(conn, order.id, f"seed-{owner}", order.total_idr, now=NOW)
        return owner

    return run_in_transaction(engine, setup)


def _hold(conn: Connection, owner: str, job_id: str) -> str:
    return quota.hold(conn, owner_id=owner, reseller_id=owner, job_id=job_id, now=NOW)


def _commit(conn: Connection, job_id: str) -> str:
    return quota.commit(
        conn,
        job_id=job_id,
        document_digest=DIGEST,
        document_type="Surat Kuasa",
        document_number="",
        document_date=None,
        now=NOW,
    )


def _stamp(engine: Engine, owner: str, job_id: str) -> str:
    """The protocol as the stamping service runs it: hold, then commit, each in its own
    transaction; retried as a whole, as a redelivered job would be."""
    serial = run_in_transaction(engine, lambda c: _hold(c, owner, job_id))
    assert run_in_transaction(engine, lambda c: _commit(c, job_id)) == serial
    return serial


def _ledger_of(admin: Engine, owner: str) -> tuple[tuple[int, int, int], dict[str, int], int]:
    """(available, held, consumed), transactions per kind, serials; all for ``owner``."""
    with admin.connect() as conn:
        balance = quota.balance(conn, owner)
        kinds: dict[str, int] = dict(
            conn.execute(
                sa.text(
                    "SELECT kind, count(*) FROM quota_transactions WHERE owner_id = :o"
                    " GROUP BY kind"
                ),
                {"o": owner},
            ).all()
        )
        serials = conn.scalar(
            sa.text("SELECT count(*) FROM quota_serials WHERE owner_id = :o"), {"o": owner}
        )
    return (balance.available, balance.held, balance.consumed), kinds, int(serials or 0)


def _assert_reconciled(admin: Engine) -> None:
    with admin.connect() as conn:
        report = quota.reconcile(conn)
    assert report.ok, "\n".join(report.lines())


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def _waits_on_a_lock(admin: Engine, pid: int) -> bool:
    with admin.connect() as conn:
        return bool(
            conn.scalar(
                sa.text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"),
                {"p": pid},
            )
        )


class _Victim(threading.Thread):
    """A stamping transaction on its own thread: runs ``step`` and, if ``pause`` is set, waits
    for it before committing, so the test can kill the backend between statements."""

    def __init__(self, engine: Engine, step: Callable[[Connection], object]) -> None:
        super().__init__(daemon=True)
        self.engine, self.step = engine, step
        self.pid: int | None = None
        self.started_step = threading.Event()
        self.finished_step = threading.Event()
        self.pause = threading.Event()
        self.resume = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.engine.begin() as conn:
                self.pid = int(conn.scalar(sa.text("SELECT pg_backend_pid()")) or 0)
                self.started_step.set()
                self.step(conn)
                self.finished_step.set()
                if self.pause.is_set():
                    self.resume.wait(30)
                conn.execute(sa.text("SELECT 1"))  # the caller's outbox insert, say
        except BaseException as error:
            self.error = error


def _lock_held_row(blocker: Connection, owner: str) -> None:
    """Lock the owner's held account row on an autocommit connection, in a transaction the test
    ends with ``ROLLBACK``. Both ``hold`` and ``commit`` lock that row last, so a victim stops
    there with every earlier write of its statement already made."""
    blocker.execute(sa.text("BEGIN"))
    blocker.execute(
        sa.text("SELECT 1 FROM quota_accounts WHERE owner_id = :o AND kind = 'held' FOR UPDATE"),
        {"o": owner},
    )


def _terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.scalar(sa.text("SELECT pg_terminate_backend(:p, 10000)"), {"p": pid})


@pytest.mark.parametrize("step", ["hold", "commit"])
@pytest.mark.parametrize("moment", ["inside the statement", "between statements"])
def test_a_backend_killed_mid_transaction_leaves_nothing_and_the_retry_debits_once(
    engine: Engine, admin: Engine, step: str, moment: str
) -> None:
    owner = _funded(engine, 3)
    job_id = f"kill-{uuid.uuid4().hex}"
    if step == "commit":
        serial = run_in_transaction(engine, lambda c: _hold(c, owner, job_id))
    before = _ledger_of(admin, owner)
    victim = _Victim(
        engine,
        (lambda c: _hold(c, owner, job_id)) if step == "hold" else (lambda c: _commit(c, job_id)),
    )
    with admin.connect() as blocker:
        if moment == "inside the statement":
            _lock_held_row(blocker, owner)
        else:
            victim.pause.set()
        victim.start()
        assert victim.started_step.wait(10)
        assert victim.pid is not None
        if moment == "inside the statement":
            _wait_until(lambda: _waits_on_a_lock(admin, victim.pid or 0), "the victim waits")
            assert not victim.finished_step.is_set()
        else:
            assert victim.finished_step.wait(10)
        _terminate(admin, victim.pid)
        victim.resume.set()
        victim.join(30)
        if moment == "inside the statement":
            blocker.execute(sa.text("ROLLBACK"))
    assert isinstance(victim.error, DBAPIError), victim.error

    assert _ledger_of(admin, owner) == before
    _assert_reconciled(admin)

    issued = _stamp(engine, owner, job_id)
    assert _stamp(engine, owner, job_id) == issued
    if step == "commit":
        assert issued == serial
    assert _ledger_of(admin, owner) == ((2, 0, 1), {"purchase": 1, "hold": 1, "commit": 1}, 1)
    _assert_reconciled(admin)


def _accepting_connections(admin: Engine) -> bool:
    try:
        with admin.connect() as conn:
            return conn.scalar(sa.text("SELECT NOT pg_is_in_recovery()")) is True
    except DBAPIError:
        return False


def _restart_immediately(admin: Engine) -> None:
    """Crash-restart the server. ``pg_ctlcluster`` refuses while another restart of the shared
    server is under way, so wait that one out and try again."""
    failures = []
    for _ in range(3):
        restart = subprocess.run(RESTART, capture_output=True, text=True, timeout=120)
        if restart.returncode == 0:
            return
        failures.append(restart.stderr.strip())
        _wait_until(lambda: _accepting_connections(admin), "PostgreSQL is back", timeout=60)
    raise AssertionError(f"could not restart PostgreSQL: {failures}")


def test_an_immediate_restart_with_stamps_in_flight_leaves_no_partial_entries(
    engine: Engine, admin: Engine
) -> None:
    # Funded for far more than a run takes: a client that ran out would stop stamping and
    # "stamping resumes" would never be seen (four clients take a few hundred a second).
    clients, units = 4, 50_000
    owner = _funded(engine, units)
    stop = threading.Event()
    acknowledged: list[tuple[str, str]] = []
    attempted: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            job_id = f"restart-{uuid.uuid4().hex}"
            with lock:
                attempted.append(job_id)
            try:
                serial = _stamp(engine, owner, job_id)
            except DBAPIError:
                time.sleep(0.05)  # the server is down; the job stays unfinished for now
                continue
            with lock:
                acknowledged.append((job_id, serial))

    # One more stamp stops inside its hold statement, so the crash certainly finds a
    # transaction with half its writes made.
    paused_job = f"restart-paused-{uuid.uuid4().hex}"
    attempted.append(paused_job)
    victim = _Victim(engine, lambda c: _hold(c, owner, paused_job))
    blocker = admin.connect()
    workers = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    try:
        for worker in workers:
            worker.start()
        _wait_until(lambda: len(acknowledged) >= 50, "stamps are flowing")
        _lock_held_row(blocker, owner)
        victim.start()
        assert victim.started_step.wait(10)
        _wait_until(lambda: _waits_on_a_lock(admin, victim.pid or 0), "the paused hold waits")
        done_before_crash = len(acknowledged)

        _restart_immediately(admin)
        _wait_until(lambda: _accepting_connections(admin), "PostgreSQL is back", timeout=60)
        _wait_until(lambda: len(acknowledged) > done_before_crash + 20, "stamping resumes")
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
        victim.join(30)
        blocker.invalidate()
        blocker.close()
        _wait_until(lambda: _accepting_connections(admin), "PostgreSQL is back", timeout=60)
    assert isinstance(victim.error, DBAPIError), victim.error

    _assert_reconciled(admin)
    with admin.connect() as conn:
        issued: dict[str, str] = dict(
            conn.execute(
                sa.text("SELECT job_id, serial FROM quota_serials WHERE status = 'ISSUED'")
            ).all()
        )
    assert all(issued.get(job_id) == serial for job_id, serial in acknowledged)

    for job_id in attempted:
        _stamp(engine, owner, job_id)
    stamped = len(attempted)
    assert _ledger_of(admin, owner) == (
        (units - stamped, 0, stamped),
        {"purchase": 1, "hold": stamped, "commit": stamped},
        stamped,
    )
    with admin.connect() as conn:
        per_job = conn.execute(
            sa.text(
                "SELECT job_id, count(*) FILTER (WHERE kind = 'hold') AS holds,"
                " count(*) FILTER (WHERE kind = 'commit') AS commits"
                " FROM quota_transactions WHERE owner_id = :o AND job_id IS NOT NULL"
                " GROUP BY job_id"
            ),
            {"o": owner},
        ).all()
    assert {row.job_id for row in per_job} == set(attempted)
    assert all((row.holds, row.commits) == (1, 1) for row in per_job)
    _assert_reconciled(admin)


def test_pooled_connections_the_server_closed_are_replaced_before_use(
    postgres_url: str, admin: Engine
) -> None:
    engine = create_engine(postgres_url, pool_size=3, max_overflow=0)
    try:
        held = [engine.connect() for _ in range(3)]
        pids = [int(conn.scalar(sa.text("SELECT pg_backend_pid()")) or 0) for conn in held]
        for conn in held:
            conn.close()
        for pid in pids:
            _terminate(admin, pid)
        for _ in range(3):
            with engine.connect() as conn:
                assert conn.scalar(sa.text("SELECT pg_backend_pid()")) not in pids
    finally:
        engine.dispose()
