"""Quota ledger throughput on PostgreSQL: hold+commit pairs per second at 1, 4 and 16 clients.

A *client* is one request in flight, as a stamping-service worker thread would have. Clients are
spread over up to ``--processes`` service processes (spawned, so they share no GIL); each process
runs its clients as threads over its own connection pool of that size, which is how replicas of
the stamping service talk to the database. Each client works for its own reseller (resellers are
independent; one reseller's holds serialise on its ``available`` row by design). A *pair* is the
stamping protocol for one document: a ``hold`` transaction followed by a ``commit`` transaction,
so two durable commits (``synchronous_commit=on``).

Baseline, measured in the same run with the same client layout, driver and engine settings: a
pgbench-like transaction that updates one account row and inserts one history row (``UPDATE ...
SET balance = balance + 1`` then ``INSERT``), the cheapest durable write transaction the database
can do. The ratio is pairs/s divided by baseline transactions/s; since a pair is two
transactions, 0.5 would mean the ledger costs nothing beyond the commits themselves.

Where the time goes, per operation: CPU of the client processes (Python: SQLAlchemy, psycopg, the
ledger code), CPU of the PostgreSQL processes serving them (their backends plus the WAL writer,
checkpointer and other server processes), and how busy the whole machine was, read from
``/proc``. If ``busy`` is well below 100% the run waited on WAL flushes, not on the CPUs; if it is
near 100% and the two CPU figures do not account for it, something else was using the machine.
Each setting runs ``--rounds`` times alternating ledger and baseline; the best round of each is
kept, which filters out interference from other work on a shared machine.

Run: ``.venv/bin/python bench/ledger.py`` (creates and drops its own database). Writes
``bench/results/ledger.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import meterai_quota as quota
from meterai_common.db import create_engine, migrate, run_in_transaction

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CLIENTS = (1, 4, 16)
RESULTS = Path(__file__).parent / "results" / "ledger.json"
DIGEST = "5e" * 32
UNITS_PER_CLIENT = 100_000
_TICKS = os.sysconf("SC_CLK_TCK")
_SETUP_S = 120.0
"""Longest wait for the other clients at a barrier; a client that died breaks it sooner."""


def _hold_and_commit(engine: sa.Engine, owner_id: str) -> None:
    job_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    run_in_transaction(
        engine,
        lambda c: quota.hold(c, owner_id=owner_id, reseller_id=owner_id, job_id=job_id, now=now),
    )
    run_in_transaction(
        engine,
        lambda c: quota.commit(
            c,
            job_id=job_id,
            document_digest=DIGEST,
            document_type="Surat Pernyataan",
            document_number="BENCH",
            document_date=date(2025, 1, 1),
            now=now,
        ),
    )


_BASELINE_UPDATE = sa.text("UPDATE bench_accounts SET balance = balance + 1 WHERE id = :id")
_BASELINE_INSERT = sa.text(
    "INSERT INTO bench_history (account_id, delta, at) VALUES (:id, 1, now())"
)


def _baseline_transaction(engine: sa.Engine, account_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(_BASELINE_UPDATE, {"id": account_id})
        conn.execute(_BASELINE_INSERT, {"id": account_id})


_OPERATIONS: dict[str, Callable[[sa.Engine, Any], None]] = {
    "ledger": _hold_and_commit,
    "baseline": _baseline_transaction,
}


def _service_process(
    operation: str,
    url: str,
    subjects: list[Any],
    seconds: float,
    ready: Any,
    done: Any,
    results: Any,
) -> None:
    """One service replica: a pool of ``len(subjects)`` connections, one thread per client."""
    work = _OPERATIONS[operation]
    engine = create_engine(url, pool_size=len(subjects), max_overflow=0)
    counts = [0] * len(subjects)
    start = threading.Barrier(len(subjects) + 1)

    def client(index: int) -> None:
        try:
            with engine.connect():
                pass
            start.wait(timeout=_SETUP_S)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                work(engine, subjects[index])
                counts[index] += 1
        except BaseException:
            # Break the barriers so that every process, and the runner, stops instead of
            # waiting forever for this client (e.g. when the server restarts mid-run).
            start.abort()
            ready.abort()
            raise

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(subjects))]
    try:
        for thread in threads:
            thread.start()
        ready.wait(timeout=_SETUP_S)
        cpu = time.process_time()
        start.wait(timeout=_SETUP_S)
        for thread in threads:
            thread.join()
        results.put((sum(counts), time.process_time() - cpu))
        done.wait(timeout=_SETUP_S)
    finally:
        engine.dispose()


def _postgres_pids(url: str) -> list[int]:
    """This database's backends and the server's own processes (WAL writer, checkpointer...)."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            return list(
                conn.scalars(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE (datname = current_database() AND pid <> pg_backend_pid())"
                        " OR backend_type <> 'client backend'"
                    )
                )
            )
    finally:
        engine.dispose()


def _cpu_s(pids: list[int]) -> dict[int, float]:
    """User+system CPU seconds of each of ``pids`` that is still running."""
    seconds = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return seconds


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICKS, sum(values) / _TICKS


@dataclass(frozen=True, slots=True)
class Measurement:
    per_s: float
    """Operations (pairs or baseline transactions) per second, all clients together."""
    client_cpu_us: float
    """CPU of the client processes per operation, in microseconds."""
    postgres_cpu_us: float
    """CPU of all PostgreSQL processes per operation, in microseconds."""
    machine_busy: float
    """Share of the machine's CPU time in use during the run (0-1), whoever used it."""


def _layout(clients: int, processes: int) -> list[range]:
    """Split client indexes over at most ``processes`` service processes, as evenly as possible."""
    count = min(clients, processes)
    return [range(i, clients, count) for i in range(count)]


def _run(
    operation: str, subjects: list[Any], url: str, seconds: float, processes: int
) -> Measurement:
    context = multiprocessing.get_context("spawn")
    groups = _layout(len(subjects), processes)
    ready = context.Barrier(len(groups) + 1)
    done = context.Barrier(len(groups) + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=_service_process,
            args=(operation, url, [subjects[i] for i in group], seconds, ready, done, results),
        )
        for group in groups
    ]
    for worker in workers:
        worker.start()
    ready.wait(timeout=_SETUP_S)
    pids = _postgres_pids(url)
    postgres_before, (busy_before, total_before) = _cpu_s(pids), _machine_cpu()
    reports = [results.get(timeout=seconds + 120) for _ in workers]
    postgres_after, (busy_after, total_after) = _cpu_s(pids), _machine_cpu()
    done.wait(timeout=_SETUP_S)
    postgres_cpu = sum(
        after - postgres_before[pid]
        for pid, after in postgres_after.items()
        if pid in postgres_before
    )
    for worker in workers:
        worker.join()
    operations = sum(count for count, _ in reports)
    client_cpu = sum(cpu for _, cpu in reports)
    return Measurement(
        per_s=operations / seconds,
        client_cpu_us=1e6 * client_cpu / max(operations, 1),
        postgres_cpu_us=1e6 * postgres_cpu / max(operations, 1),
        machine_busy=(busy_after - busy_before) / max(total_after - total_before, 1e-9),
    )


def _prepare(url: str, clients: int) -> list[str]:
    engine = create_engine(url)
    try:

        def setup(conn: sa.Connection) -> list[str]:
            owners = []
            for i in range(clients):
                owner = quota.create_reseller(conn, f"bench-{i}").id
                order = quota.purchase(conn, owner, UNITS_PER_CLIENT, "bench")
                quota.confirm_payment(conn, order.id, f"bench-{owner}", order.total_idr)
                owners.append(owner)
            return owners

        return run_in_transaction(engine, setup)
    finally:
        engine.dispose()


def _create_baseline_tables(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL)"
            )
            conn.exec_driver_sql(
                "CREATE TABLE bench_history (id bigserial PRIMARY KEY, account_id int NOT NULL,"
                " delta int NOT NULL, at timestamptz NOT NULL)"
            )
            conn.exec_driver_sql(
                "INSERT INTO bench_accounts SELECT g, 0 FROM generate_series(1, 64) g"
            )
    finally:
        engine.dispose()


def _best(measurements: list[Measurement]) -> Measurement:
    return max(measurements, key=lambda measurement: measurement.per_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measurement per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per setting; best is kept")
    parser.add_argument(
        "--processes", type=int, default=4, help="most service processes the clients are split over"
    )
    args = parser.parse_args()

    name = f"meterai_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(url)
        migrate(engine)
        engine.dispose()
        _create_baseline_tables(url)

        ledger: dict[str, Any] = {}
        baseline: dict[str, Any] = {
            "name": "pgbench-like UPDATE one row + INSERT one row per transaction",
            "driver": "psycopg 3 via SQLAlchemy Core, same engine settings and client layout",
        }
        for clients in CLIENTS:
            owners = _prepare(url, clients)
            accounts = [i + 1 for i in range(clients)]
            pairs: list[Measurement] = []
            transactions: list[Measurement] = []
            for _ in range(args.rounds):
                pairs.append(_run("ledger", owners, url, args.seconds, args.processes))
                transactions.append(_run("baseline", accounts, url, args.seconds, args.processes))
            best_pairs, best_transactions = _best(pairs), _best(transactions)
            groups = _layout(clients, args.processes)
            key = f"clients_{clients}"
            ledger[key] = {
                "layout": f"{len(groups)} process(es) x {len(groups[0])} thread(s)",
                "hold_commit_per_s": round(best_pairs.per_s, 1),
                "ratio": round(best_pairs.per_s / best_transactions.per_s, 3),
                **{
                    name: round(value, 3 if name == "machine_busy" else 0)
                    for name, value in asdict(best_pairs).items()
                    if name != "per_s"
                },
                "rounds_per_s": [round(m.per_s, 1) for m in pairs],
            }
            baseline[key] = {
                "transactions_per_s": round(best_transactions.per_s, 1),
                **{
                    name: round(value, 3 if name == "machine_busy" else 0)
                    for name, value in asdict(best_transactions).items()
                    if name != "per_s"
                },
                "rounds_per_s": [round(m.per_s, 1) for m in transactions],
            }
        with create_engine(url).connect() as conn:
            report = quota.reconcile(conn)
        if not report.ok:
            raise SystemExit("\n".join(report.lines()))

        results = {
            "postgresql": ledger,
            "baseline": baseline,
            "target_hold_commit_per_s": 1000,
            "seconds_per_round": args.seconds,
            "rounds": args.rounds,
            "cpus": multiprocessing.cpu_count(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")

        print(
            f"{'clients':>7} {'layout':>18} {'pairs/s':>8} {'base tx/s':>9} {'ratio':>6}"
            f" {'py us/pair':>10} {'pg us/pair':>10} {'busy':>5}"
            f" {'py us/tx':>8} {'pg us/tx':>8} {'busy':>5}"
        )
        for clients in CLIENTS:
            key = f"clients_{clients}"
            row, base = ledger[key], baseline[key]
            print(
                f"{clients:>7} {row['layout']:>18} {row['hold_commit_per_s']:>8,.0f}"
                f" {base['transactions_per_s']:>9,.0f} {row['ratio']:>6.3f}"
                f" {row['client_cpu_us']:>10,.0f} {row['postgres_cpu_us']:>10,.0f}"
                f" {row['machine_busy']:>5.0%}"
                f" {base['client_cpu_us']:>8,.0f} {base['postgres_cpu_us']:>8,.0f}"
                f" {base['machine_busy']:>5.0%}"
            )
        print(f"ledger reconciled: {report.ok}; results in {RESULTS}")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
