"""Quota ledger throughput on PostgreSQL: hold+commit pairs per second at 1, 4 and 16 clients.

Each client is a separate process with its own connection, as a stamping-service replica would
be, and works for its own reseller (resellers are independent; one reseller's holds serialise on
its ``available`` row by design). A *pair* is the stamping protocol for one document: a ``hold``
transaction followed by a ``commit`` transaction, so two durable commits.

Baseline, measured in the same run with the same driver and engine settings: a pgbench-like
transaction that updates one account row and inserts one history row (``UPDATE ... SET
balance = balance + 1`` then ``INSERT``), the cheapest durable write transaction the database can
do. The printed ratio is pairs/s divided by baseline transactions/s; since a pair is two
transactions, 0.5 would mean the ledger costs nothing beyond the commits themselves.

Run: ``.venv/bin/python bench/ledger.py`` (creates and drops its own database). Writes
``bench/results/ledger.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
import uuid
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


def _ledger_client(url: str, owner_id: str, seconds: float, ready: Any) -> int:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect():
            pass
        ready.wait()
        pairs = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            job_id = uuid.uuid4().hex
            now = datetime.now(UTC)
            run_in_transaction(
                engine,
                lambda c, job_id=job_id, now=now: quota.hold(
                    c, owner_id=owner_id, reseller_id=owner_id, job_id=job_id, now=now
                ),
            )
            run_in_transaction(
                engine,
                lambda c, job_id=job_id, now=now: quota.commit(
                    c,
                    job_id=job_id,
                    document_digest=DIGEST,
                    document_type="Surat Pernyataan",
                    document_number="BENCH",
                    document_date=date(2025, 1, 1),
                    now=now,
                ),
            )
            pairs += 1
        return pairs
    finally:
        engine.dispose()


_BASELINE_UPDATE = sa.text("UPDATE bench_accounts SET balance = balance + 1 WHERE id = :id")
_BASELINE_INSERT = sa.text(
    "INSERT INTO bench_history (account_id, delta, at) VALUES (:id, 1, now())"
)


def _baseline_client(url: str, account_id: int, seconds: float, ready: Any) -> int:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect():
            pass
        ready.wait()
        transactions = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with engine.begin() as conn:
                conn.execute(_BASELINE_UPDATE, {"id": account_id})
                conn.execute(_BASELINE_INSERT, {"id": account_id})
            transactions += 1
        return transactions
    finally:
        engine.dispose()


def _client(target: Any, args: tuple[Any, ...], ready: Any, results: Any) -> None:
    results.put(target(*args, ready))


def _run(target: Any, args: list[tuple[Any, ...]], seconds: float) -> float:
    """Start one process per client, release them together once all are connected, and
    return the total operations per second."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(args))
    results = context.Queue()
    processes = [
        context.Process(target=_client, args=(target, (*a, seconds), ready, results)) for a in args
    ]
    for process in processes:
        process.start()
    counts = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join()
    return sum(counts) / seconds


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measurement per setting")
    args = parser.parse_args()

    name = f"meterai_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(url)
        migrate(engine)
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
        engine.dispose()

        ledger: dict[str, dict[str, float]] = {}
        baseline: dict[str, Any] = {
            "name": "pgbench-like UPDATE one row + INSERT one row per transaction",
            "driver": "psycopg 3 via SQLAlchemy Core, same engine settings",
        }
        for clients in CLIENTS:
            owners = _prepare(url, clients)
            pairs = _run(_ledger_client, [(url, owner) for owner in owners], args.seconds)
            tps = _run(_baseline_client, [(url, i + 1) for i in range(clients)], args.seconds)
            key = f"clients_{clients}"
            ledger[key] = {"hold_commit_per_s": round(pairs, 1), "ratio": round(pairs / tps, 3)}
            baseline[key] = {"transactions_per_s": round(tps, 1)}
        with create_engine(url).connect() as conn:
            report = quota.reconcile(conn)
        if not report.ok:
            raise SystemExit("\n".join(report.lines()))

        results = {
            "postgresql": ledger,
            "baseline": baseline,
            "target_hold_commit_per_s": 1000,
            "seconds_per_setting": args.seconds,
            "cpus": multiprocessing.cpu_count(),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")

        print(f"{'clients':>8} {'hold+commit/s':>14} {'baseline tx/s':>14} {'ratio':>7}")
        for clients in CLIENTS:
            key = f"clients_{clients}"
            print(
                f"{clients:>8} {ledger[key]['hold_commit_per_s']:>14,.0f} "
                f"{baseline[key]['transactions_per_s']:>14,.0f} {ledger[key]['ratio']:>7.3f}"
            )
        print(f"ledger reconciled: {report.ok}; results in {RESULTS}")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
