"""CPNS-day rehearsal: a registration window's arrival curve, with faults on a schedule.

The load is shaped like the September 2024 civil-service (CPNS) registration window that broke
the national service, compressed into minutes: every "day" a daily cycle (quiet at night,
busiest in the afternoon), each day busier than the last, rising to a peak on the deadline day
of five times the window's average rate. Submissions leave on that schedule whatever the
answers (open loop), from a separate process, spread over several resellers.

The platform is the distributed one (:class:`tests.support.launch.DistributedPlatform`: every
service its own process, Celery signing workers, a finishing worker) on a fresh PostgreSQL
database and a three-node RabbitMQ cluster of its own (``tests/support/rabbit_cluster.py``,
every process given the three addresses). While the load runs, faults happen on a schedule
(fractions of the window, :data:`FAULTS`):

* a signing worker SIGKILLed (and a new one started, as an orchestrator would);
* the RabbitMQ node leading the ``signing`` queue SIGKILLed, and started again later;
* the run's own PostgreSQL server (``tests/support/pg_cluster.py``: a second Debian cluster on
  a free port, removed afterwards; the machine's server is left alone) restarted in immediate
  mode;
* a second signing worker added before the deadline-day peak and removed (warm shutdown) after.

The report (``bench/results/cpns_day.json`` and ``cpns_day.png``; the long profile writes
``cpns_day_long.*``) has, per second, the offered, admitted and refused submissions; per
five seconds, p50/p99 latency from send to DONE; per second, the backlog (documents waiting
for their signature) and the age of its oldest, the running signing workers and broker nodes;
and at the end: lost jobs (accepted, never DONE nor refunded), duplicate serials, refusals
without retry advice (each must carry ``RetryInfo`` or the pushback trailer), the ledger
reconciliation, and the CPU each tier used, as documents per second per core, checked
against the README's capacity model (:data:`CAPACITY_MODEL`).

Run: ``.venv/bin/python bench/cpns_day.py`` (short profile, about 4 minutes, what ``make
bench`` runs) or ``--profile long`` (a week-long window in 10 minutes); ``--help``.
Needs RabbitMQ installed (``rabbitmq-server``; the default node is left alone) and PostgreSQL
on 127.0.0.1 (``make services``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import psycopg

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(REPO))

from bench.e2e import (  # noqa: E402
    DOCUMENT,
    TERMINAL,
    Profiler,
    _buy_quota,
    _create_resellers,
    _json_safe,
    _percentile,
    _pushback_ms,
    _request,
    _wait_serving,
    bench_env,
)
from meterai.stamping.v1 import stamping_pb2_grpc  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PEAK_TO_AVERAGE = 5.0
PEAK_WINDOW_DELAY_S = 6.0
"""Seconds after the spare worker starts before the peak's CPU window opens."""
RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"

CAPACITY_MODEL = {
    "stamping service": 120.0,
    "signing workers": 230.0,
    "finishing workers": 200.0,
    "postgresql": 250.0,
    "rabbitmq": 300.0,
}
"""Documents per second per core of each tier, as the README's capacity model states them
(measured by ``bench/e2e.py``); the rehearsal measures them again under faults and reports the
ratio. A tier far below its figure means the model, and the sizing built on it, is wrong."""


@dataclass(frozen=True)
class Profile:
    """One rehearsal: the compressed window and the platform's admission limits."""

    days: int
    day_s: float
    """Wall seconds one registration day is compressed into."""
    average_per_s: float
    """Mean offered rate over the window; the deadline-day peak is five times this."""
    resellers: int = 8
    high_water: int = 300
    max_wait_ms: int = 1500
    max_inflight: int = 256


PROFILES = {
    "short": Profile(days=3, day_s=40.0, average_per_s=10.0),
    "long": Profile(days=7, day_s=85.0, average_per_s=12.0),
}

FAULTS: tuple[tuple[float, str], ...] = (
    (0.30, "signing worker SIGKILL"),
    (0.42, "broker node lost"),
    (0.52, "PostgreSQL restart"),
    (0.62, "broker node back"),
    (0.78, "signing worker added"),
    (0.94, "signing worker removed"),
)
"""(fraction of the window, fault): each fires once, in order."""


# -- the arrival curve -------------------------------------------------------------------------


def _daily(hour_fraction: float) -> float:
    """Relative activity across one day: lowest at 03:00, highest at 15:00."""
    return 0.15 + (0.5 - 0.5 * math.cos(2 * math.pi * (hour_fraction - 0.125))) ** 2


def _shape(t: float, total: float, growth: float, days: int) -> float:
    day_fraction = (t / total) * days % 1.0
    return _daily(day_fraction) * math.exp(growth * t / total)


def arrival_rate(profile: Profile, step_s: float = 0.1) -> list[float]:
    """Offered submissions per second at each ``step_s`` of the window.

    The growth toward the deadline is solved for (bisection) so the peak is exactly
    :data:`PEAK_TO_AVERAGE` times the window's mean, which is ``profile.average_per_s``.
    """
    total = profile.days * profile.day_s
    steps = int(total / step_s)

    def ratio(growth: float) -> float:
        values = [_shape(i * step_s, total, growth, profile.days) for i in range(steps)]
        return max(values) / (sum(values) / len(values))

    low, high = 0.0, 20.0
    for _ in range(60):
        middle = (low + high) / 2
        if ratio(middle) < PEAK_TO_AVERAGE:
            low = middle
        else:
            high = middle
    values = [_shape(i * step_s, total, low, profile.days) for i in range(steps)]
    mean = sum(values) / len(values)
    return [profile.average_per_s * value / mean for value in values]


def send_offsets(rates: Sequence[float], step_s: float = 0.1) -> list[float]:
    """When each submission leaves (seconds from the start): where the integral of the rate
    crosses a whole number, so the offered count follows the curve exactly."""
    offsets, integral, due = [], 0.0, 1.0
    for index, rate in enumerate(rates):
        before = integral
        integral += rate * step_s
        while integral >= due:
            offsets.append((index + (due - before) / (rate * step_s)) * step_s)
            due += 1.0
    return offsets


# -- the load generator (its own process) ------------------------------------------------------

Record = tuple[float, float, str, str, str, bool]
"""(sent at, wall s; answered after, s; ``OK``, ``SKIPPED`` or the status code name; job id;
serial; the refusal carried retry advice)."""


def _retry_advice(error: grpc.aio.AioRpcError) -> bool:
    """The refusal tells the client when to come back: the pushback trailer or RetryInfo."""
    if _pushback_ms(error) >= 0:
        return True
    from google.rpc import status_pb2

    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            return any(detail.type_url == RETRY_INFO_TYPE for detail in status.details)
    return False


async def _offer(
    target: str, ca: bytes, api_keys: Sequence[str], offsets: Sequence[float], max_inflight: int
) -> list[Record]:
    pdf = DOCUMENT.read_bytes()
    records: list[Record] = []
    inflight = 0
    pending: set[asyncio.Task[None]] = set()
    options = [("grpc.max_send_message_length", 32 * 1024 * 1024), ("grpc.enable_retries", 0)]
    async with grpc.aio.secure_channel(
        target, grpc.ssl_channel_credentials(ca), options=options
    ) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        stub = stamping_pb2_grpc.StampingServiceStub(channel)

        async def submit(index: int) -> None:
            nonlocal inflight
            metadata = (("x-api-key", api_keys[index % len(api_keys)]),)
            sent, began = time.time(), time.monotonic()
            try:
                job = await stub.SubmitDocument(_request(pdf), metadata=metadata, timeout=30)
            except grpc.aio.AioRpcError as error:
                records.append(
                    (
                        sent,
                        time.monotonic() - began,
                        error.code().name,
                        "",
                        "",
                        _retry_advice(error),
                    )
                )
            else:
                records.append(
                    (sent, time.monotonic() - began, "OK", job.job_id, job.serial, False)
                )
            finally:
                inflight -= 1

        start = time.monotonic()
        for index, offset in enumerate(offsets):
            await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
            if inflight >= max_inflight:
                records.append((time.time(), 0.0, "SKIPPED", "", "", False))
                continue
            inflight += 1
            task = asyncio.create_task(submit(index))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    return records


def _load_process(args: tuple[Any, ...], go: Any, results: Any) -> None:
    go.wait()
    results.put(asyncio.run(_offer(*args)))


# -- what the orchestrator samples every second ------------------------------------------------


@dataclass
class Sample:
    at: float
    backlog: int | None
    """Jobs accepted and not yet terminal (None: the database did not answer)."""
    oldest_s: float | None
    """Age of the oldest of them."""
    outbox_pending: int | None
    workers: int
    broker_nodes: int


class Sampler(threading.Thread):
    def __init__(self, conninfo: str, count_workers: Any, count_nodes: Any) -> None:
        super().__init__(name="cpns-sampler", daemon=True)
        self._conninfo = conninfo
        self._workers = count_workers
        self._nodes = count_nodes
        self.samples: list[Sample] = []
        self.stop = threading.Event()

    def run(self) -> None:
        db: psycopg.Connection[Any] | None = None
        while not self.stop.wait(1.0):
            backlog = oldest = outbox = None
            try:
                if db is None or db.closed:
                    db = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=2)
                row = db.execute(
                    "SELECT count(*), extract(epoch FROM now() - min(created_at)),"
                    " (SELECT count(*) FROM outbox WHERE published_at IS NULL)"
                    " FROM jobs WHERE state <> ALL(%s)",
                    (list(TERMINAL),),
                ).fetchone()
                if row is not None:
                    backlog, outbox = int(row[0]), int(row[2])
                    oldest = float(row[1]) if row[1] is not None else 0.0
            except psycopg.Error:
                db = None  # PostgreSQL is restarting: this second has no figures
            self.samples.append(
                Sample(time.time(), backlog, oldest, outbox, self._workers(), self._nodes())
            )


# -- the run -----------------------------------------------------------------------------------


def run(profile: Profile, name: str, keep: bool = False) -> dict[str, Any]:
    """Set up the cluster, database and platform, offer the window with its faults, report;
    everything is torn down afterwards (the processes' logs stay with ``keep``)."""
    from tests.support.launch import DistributedPlatform
    from tests.support.pg_cluster import private_postgres_cluster
    from tests.support.rabbit_cluster import RabbitCluster

    if not DOCUMENT.is_file():
        raise SystemExit(f"the benchmark document is missing: {DOCUMENT}")
    rates = arrival_rate(profile)
    offsets = send_offsets(rates)
    window = profile.days * profile.day_s
    suffix = uuid.uuid4().hex[:10]
    database = f"meterai_cpns_{suffix}"
    home = Path(tempfile.mkdtemp(prefix="meterai-cpns-"))
    broker = RabbitCluster(home / "rabbit")
    platform = DistributedPlatform(home / "platform")
    (home / "platform").mkdir()
    load_before = os.getloadavg()[0]
    # A PostgreSQL server of the run's own: the schedule crashes it, and the machine's
    # server (what every other program on the host uses) must not go down with it.
    stack = ExitStack()
    cluster = stack.enter_context(private_postgres_cluster("meterai_cpns"))
    cluster.create_database(database)
    conninfo = f"{cluster.conninfo}/{database}"
    database_url = cluster.url(database)
    events: list[dict[str, Any]] = []
    try:
        print("starting a three-node RabbitMQ cluster ...", flush=True)
        broker.start()
        print("starting the platform ...", flush=True)
        platform.start(
            database_url,
            broker.amqp_url(),
            workers=1,
            extra_env=bench_env(profile.high_water, profile.max_wait_ms),
        )
        platform.add_finisher("finisher-1")
        ca = (platform.home / "tls" / "ca.crt").read_bytes()
        keys = tuple(_create_resellers(database_url, profile.resellers))
        units = math.ceil(len(offsets) / profile.resellers) + 10
        _buy_quota(f"127.0.0.1:{platform.base_port}", keys, units, ca)
        _wait_serving([platform.base_port + 1], ca)
        size_before = _database_bytes(conninfo)

        def workers() -> int:
            return sum(
                1
                for key, process in platform.processes.items()
                if key.startswith("worker") and process.poll() is None
            )

        sampler = Sampler(conninfo, workers, lambda: sum(node.running for node in broker.nodes))
        context = multiprocessing.get_context("spawn")
        go, results = context.Event(), context.Queue()
        loader = context.Process(
            target=_load_process,
            args=(
                (
                    f"127.0.0.1:{platform.base_port + 1}",
                    ca,
                    keys,
                    offsets,
                    profile.max_inflight,
                ),
                go,
                results,
            ),
            name="cpns-load",
        )
        loader.start()
        profiler = Profiler(platform, database, conninfo)
        print(
            f"offering {len(offsets)} submissions over {window:.0f} s "
            f"({profile.days} days, average {profile.average_per_s:g}/s, peak "
            f"{max(rates):.0f}/s) ...",
            flush=True,
        )
        time.sleep(2)  # the load process imports grpc and reads the document
        cpu_before = profiler.snapshot()
        started = time.time()
        go.set()
        sampler.start()
        lost_node = None
        spare = 0
        peak: dict[str, Any] = {}
        for fraction, fault in FAULTS:
            time.sleep(max(0.0, started + fraction * window - time.time()))
            at = time.time() - started
            began = time.monotonic()
            event: dict[str, Any] = {"at_s": round(at, 1), "fault": fault}
            if fault == "signing worker SIGKILL":
                victim = next(
                    k
                    for k, p in platform.processes.items()
                    if k.startswith("worker") and p.poll() is None
                )
                platform.stop(victim, signal.SIGKILL)
                spare += 1
                platform.add_worker(f"worker-r{spare}")
            elif fault == "broker node lost":
                leader = broker.quorum_queues()["signing"]["leader"]
                lost_node = broker.node(str(leader))
                broker.kill(lost_node)
                event["node"] = lost_node.name
                # What each quorum queue looks like while the node is away: whether the
                # survivors elected leaders (a queue without one holds its publishers'
                # confirms until the node returns).
                for delay in QUEUE_SNAPSHOTS_S:
                    threading.Timer(delay, _snapshot_queues, (broker, event, delay)).start()
            elif fault == "PostgreSQL restart":
                cluster.restart_immediate()
            elif fault == "broker node back":
                assert lost_node is not None
                broker.restart(lost_node)
            elif fault == "signing worker added":
                platform.add_worker("worker-peak")
                # The window opens once the new worker consumes: its start-up (interpreter,
                # Celery, the key) is not the cost of a document.
                threading.Timer(
                    PEAK_WINDOW_DELAY_S,
                    lambda: peak.update(
                        start=time.time(), before=_cluster_only(profiler.snapshot(), broker)
                    ),
                ).start()
            elif fault == "signing worker removed":
                peak.update(end=time.time(), after=_cluster_only(profiler.snapshot(), broker))
                platform.stop("worker-peak", signal.SIGTERM)
            event["took_s"] = round(time.monotonic() - began, 1)
            events.append(event)
            print(f"  {at:6.1f} s  {fault}", flush=True)
        records: list[Record] = results.get(timeout=window + 600)
        loader.join(30)
        offer_end = time.time()
        cpu_after = profiler.snapshot()
        settled_unfinished = _settle_jobs(conninfo, 300)
        sampler.stop.set()
        sampler.join(10)
        reconcile = platform.cli("admin", "reconcile")
        report = _report(
            profile,
            name,
            rates,
            records,
            sampler.samples,
            events,
            started,
            offer_end,
            conninfo,
            Profiler.shares(cpu_before, cpu_after, None),
            (peak["start"], peak["end"], Profiler.shares(peak["before"], peak["after"], None)),
            reconcile.code == 0,
            (reconcile.stdout + reconcile.stderr).strip().splitlines()[-5:],
            settled_unfinished,
        )
        report["load_average_1m_before"] = round(load_before, 2)
        grown = _database_bytes(conninfo) - size_before
        jobs = max(1, sum(report["totals"]["accepted_by_final_state"].values()))
        report["database"] = {
            "grew_bytes": grown,
            "bytes_per_accepted_job": round(grown / jobs),
            "note": "documents in the shared directory, not the database; outbox rows of the "
            "run not yet purged (they are kept a day)",
        }
        return report
    finally:
        platform.stop()
        broker.stop()
        try:
            stack.close()  # the run's PostgreSQL cluster, stopped and removed
        finally:
            import shutil

            if keep:
                print(f"logs kept in {home}", flush=True)
            else:
                shutil.rmtree(home, ignore_errors=True)


def _cluster_only(snapshot: Any, broker: Any) -> Any:
    """The snapshot with its ``rabbitmq`` group cut down to this run's three nodes (the host's
    default node, which others use, is a ``beam.smp`` too)."""
    from dataclasses import replace

    ours = {broker.beam_pid(node) for node in broker.nodes if node.running}
    groups = dict(snapshot.groups)
    groups["rabbitmq"] = {pid: t for pid, t in groups.get("rabbitmq", {}).items() if pid in ours}
    return replace(snapshot, groups=groups)


def _database_bytes(conninfo: str) -> int:
    """The run's database on disk (tables, indexes, TOAST): its growth per job is what the
    capacity model's database size is built from."""
    with psycopg.connect(conninfo, autocommit=True) as db:
        row = db.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0


def _settle_jobs(conninfo: str, timeout: float) -> int:
    """Wait until every job is terminal (PostgreSQL may still be recovering); the count left."""
    deadline = time.monotonic() + timeout
    unfinished = -1
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=2) as db:
                row = db.execute(
                    "SELECT count(*) FROM jobs WHERE state <> ALL(%s)", (list(TERMINAL),)
                ).fetchone()
            unfinished = int(row[0]) if row else 0
            if unfinished == 0:
                return 0
        except psycopg.Error:
            pass
        time.sleep(0.5)
    return unfinished


def _per_second(values: Sequence[float], start: float, seconds: int) -> list[int]:
    counts = [0] * seconds
    for value in values:
        index = int(value - start)
        if 0 <= index < seconds:
            counts[index] += 1
    return counts


QUEUE_SNAPSHOTS_S = (10.0, 30.0)
"""Seconds after a broker node is lost at which the report records the quorum queues."""


def _snapshot_queues(broker: Any, event: dict[str, Any], delay: float) -> None:
    """Record each quorum queue's leader and online members into the fault's event."""
    try:
        queues = broker.quorum_queues()
    except Exception as error:  # a cluster too busy to answer is itself worth recording
        event[f"queues_after_{delay:g}_s"] = f"unavailable: {error!r}"[:300]
        return
    event[f"queues_after_{delay:g}_s"] = {
        name: {"leader": queue["leader"], "online": sorted(queue["online"] or [])}
        for name, queue in queues.items()
        # Celery's delayed-delivery queues (28 of them, for retries with a countdown) would
        # bury the platform's own.
        if not name.startswith("celery_delayed_")
    }


def _report(
    profile: Profile,
    name: str,
    rates: Sequence[float],
    records: Sequence[Record],
    samples: Sequence[Sample],
    events: list[dict[str, Any]],
    started: float,
    offer_end: float,
    conninfo: str,
    cpu: dict[str, float],
    peak: tuple[float, float, dict[str, float]],
    reconciled: bool,
    reconcile_tail: list[str],
    unfinished: int,
) -> dict[str, Any]:
    seconds = math.ceil(offer_end - started)
    accepted = [r for r in records if r[2] == "OK"]
    refused = [r for r in records if r[2] not in ("OK", "SKIPPED")]
    with psycopg.connect(conninfo, autocommit=True) as db:
        rows = {
            job_id: (state, updated, refunded)
            for job_id, state, updated, refunded in db.execute(
                "SELECT j.job_id, j.state, j.updated_at,"
                " NOT EXISTS (SELECT 1 FROM quota_serials s WHERE s.job_id = j.job_id"
                "   AND s.status IN ('HELD', 'ISSUED'))"
                " FROM jobs j"
            ).fetchall()
        }
        duplicates_in_db = db.execute(
            "SELECT count(*) - count(DISTINCT serial) FROM jobs WHERE serial IS NOT NULL"
        ).fetchone()
    states = Counter(rows[r[3]][0] if r[3] in rows else "MISSING" for r in accepted)
    lost = [
        r[3]
        for r in accepted
        if r[3] not in rows
        or rows[r[3]][0] not in TERMINAL
        or (rows[r[3]][0] != "DONE" and not rows[r[3]][2])
    ]
    serials = [r[4] for r in accepted]
    duplicates = (
        len(serials) - len(set(serials)) + int(duplicates_in_db[0] if duplicates_in_db else 0)
    )
    latency = {
        r[0]: rows[r[3]][1].timestamp() - r[0]
        for r in accepted
        if r[3] in rows and rows[r[3]][0] == "DONE"
    }
    bins = []
    for first in range(0, seconds, 5):
        window = [v for sent, v in latency.items() if first <= sent - started < first + 5]
        bins.append(
            {
                "t_s": first,
                "p50_ms": round(_percentile(window, 50) * 1000, 1),
                "p99_ms": round(_percentile(window, 99) * 1000, 1),
            }
        )
    done_per_s = len(latency) / max(1.0, offer_end - started)
    # Per-core figures come from the peak (the busiest stretch, between the spare worker's
    # start and stop), where the platform is saturated: averaged over the whole window they
    # would mostly measure idle overhead (pollers, heartbeats, three broker nodes).
    peak_start, peak_end, peak_cpu = peak
    done_at_peak = sum(
        1
        for state, updated, _ in rows.values()
        if state == "DONE" and peak_start <= updated.timestamp() < peak_end
    )
    done_per_s_peak = done_at_peak / max(1.0, peak_end - peak_start)
    per_core = {}
    for tier, share_key in (
        ("stamping service", "stamping service"),
        ("signing workers", "signing workers"),
        ("finishing workers", "finishing workers"),
        ("postgresql", "postgresql (this run's sessions)"),
        ("rabbitmq", "rabbitmq"),
    ):
        share = peak_cpu.get(share_key, 0.0) / 100
        measured = done_per_s_peak / share if share > 0 else math.nan
        per_core[tier] = {
            "cpu_percent_of_one_core": peak_cpu.get(share_key, 0.0),
            "documents_per_s_per_core": round(measured, 1),
            "model_documents_per_s_per_core": CAPACITY_MODEL[tier],
            "ratio_to_model": round(measured / CAPACITY_MODEL[tier], 2),
        }
    without_advice = [r for r in refused if not r[5]]
    return {
        "profile": name,
        "window": {
            "days": profile.days,
            "day_s": profile.day_s,
            "average_offered_per_s": profile.average_per_s,
            "peak_offered_per_s": round(max(rates), 1),
            "peak_to_average": round(max(rates) / (sum(rates) / len(rates)), 2),
        },
        "totals": {
            "offered": len(records),
            "admitted": len(accepted),
            "refused": len(refused),
            "refused_by_code": dict(Counter(r[2] for r in refused)),
            "skipped_client_bound": sum(1 for r in records if r[2] == "SKIPPED"),
            "accepted_by_final_state": dict(states),
            "done_per_s": round(done_per_s, 1),
        },
        "checks": {
            "lost": len(lost),
            "lost_examples": lost[:5],
            "duplicate_serials": duplicates,
            "refusals_without_retry_advice": len(without_advice),
            "ledger_reconciled": reconciled,
            "reconcile_output": reconcile_tail,
            "unfinished_after_settle": unfinished,
        },
        "latency_ms": {
            "p50": round(_percentile(list(latency.values()), 50) * 1000, 1),
            "p99": round(_percentile(list(latency.values()), 99) * 1000, 1),
            "admitted_answer_p99": round(_percentile([r[1] for r in accepted], 99) * 1000, 1),
            "refusal_answer_p99": round(_percentile([r[1] for r in refused], 99) * 1000, 1),
        },
        "faults": events,
        "per_second": {
            "offered": _per_second([r[0] for r in records], started, seconds),
            "admitted": _per_second([r[0] for r in accepted], started, seconds),
            "refused": _per_second([r[0] for r in refused], started, seconds),
            "refused_unavailable": _per_second(
                [r[0] for r in refused if r[2] == "UNAVAILABLE"], started, seconds
            ),
            "curve_per_s": [
                round(sum(rates[i * 10 : i * 10 + 10]) / 10, 2) for i in range(len(rates) // 10)
            ],
        },
        "latency_per_5_s": bins,
        "samples": [dict(asdict(s), at=round(s.at - started, 1)) for s in samples],
        "cpu_percent_of_one_core": cpu,
        "peak": {
            "from_s": round(peak_start - started, 1),
            "to_s": round(peak_end - started, 1),
            "done_per_s": round(done_per_s_peak, 1),
            "cpu_percent_of_one_core": peak_cpu,
        },
        "capacity_per_core": per_core,
        "method": (
            f"open loop on the arrival curve ({profile.days} days of {profile.day_s:g} s, "
            f"peak {PEAK_TO_AVERAGE:g}x average), {profile.resellers} resellers, document "
            f"jpeg.pdf; latency = client send to DONE commit (jobs.updated_at); backlog high "
            f"water {profile.high_water}, {profile.max_wait_ms} ms of work; CPU from /proc over "
            "the offered window; per-core figures over the peak (spare worker up), rabbitmq "
            "= the cluster's three nodes"
        ),
        "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# -- the report's plots ------------------------------------------------------------------------


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_second = report["per_second"]
    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    seconds = range(len(per_second["offered"]))
    ax = axes[0]
    ax.plot(seconds, per_second["offered"], label="offered", color="0.4")
    ax.plot(seconds, per_second["admitted"], label="admitted", color="tab:green")
    ax.plot(seconds, per_second["refused"], label="refused (with retry advice)", color="tab:red")
    ax.plot(
        range(len(per_second["curve_per_s"])),
        per_second["curve_per_s"],
        ":",
        color="k",
        label="arrival curve",
    )
    ax.set_ylabel("submissions / s")
    ax.legend(loc="upper left")
    ax = axes[1]
    bins = report["latency_per_5_s"]
    ax.plot([b["t_s"] for b in bins], [b["p50_ms"] for b in bins], label="p50", color="tab:blue")
    ax.plot([b["t_s"] for b in bins], [b["p99_ms"] for b in bins], label="p99", color="tab:purple")
    ax.set_ylabel("send → DONE, ms")
    ax.set_yscale("log")
    ax.legend(loc="upper left")
    samples = report["samples"]
    at = [s["at"] for s in samples]
    ax = axes[2]
    ax.plot(at, [s["oldest_s"] for s in samples], color="tab:orange", label="oldest waiting job, s")
    ax.set_ylabel("backlog age, s")
    twin = ax.twinx()
    twin.plot(at, [s["backlog"] for s in samples], color="0.5", label="backlog, jobs")
    twin.set_ylabel("backlog, jobs")
    ax.legend(loc="upper left")
    ax = axes[3]
    ax.step(at, [s["workers"] for s in samples], where="post", label="signing workers")
    ax.step(at, [s["broker_nodes"] for s in samples], where="post", label="RabbitMQ nodes up")
    ax.set_ylabel("processes")
    ax.set_xlabel("seconds into the window")
    ax.set_ylim(0, 4)
    ax.legend(loc="lower left")
    for event in report["faults"]:
        for axis in axes:
            axis.axvline(event["at_s"], color="tab:red", alpha=0.3, linestyle="--")
        axes[0].annotate(
            event["fault"],
            (event["at_s"], axes[0].get_ylim()[1]),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
        )
    checks = report["checks"]
    fig.suptitle(
        f"CPNS-day rehearsal ({report['profile']}): {report['totals']['admitted']} admitted, "
        f"{report['totals']['refused']} refused; lost {checks['lost']}, duplicate serials "
        f"{checks['duplicate_serials']}, refusals without advice "
        f"{checks['refusals_without_retry_advice']}, ledger "
        f"{'reconciled' if checks['ledger_reconciled'] else 'NOT reconciled'}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _print(report: dict[str, Any]) -> None:
    totals, checks, latency = report["totals"], report["checks"], report["latency_ms"]
    print()
    print(f"CPNS-day rehearsal, {report['profile']} profile: {report['window']}")
    print(
        f"offered {totals['offered']}, admitted {totals['admitted']}, refused "
        f"{totals['refused']} {totals['refused_by_code']}, done {totals['done_per_s']}/s"
    )
    print(f"latency send -> DONE p50 {latency['p50']} ms, p99 {latency['p99']} ms")
    print(f"faults: {[(e['at_s'], e['fault']) for e in report['faults']]}")
    for tier, figures in report["capacity_per_core"].items():
        if figures["documents_per_s_per_core"] is None:  # the tier used no CPU to measure
            print(f"  {tier:<20} not measured (no CPU seen over the peak)")
            continue
        print(
            f"  {tier:<20} {figures['documents_per_s_per_core']:>7} docs/s/core "
            f"(model {figures['model_documents_per_s_per_core']:g}, "
            f"ratio {figures['ratio_to_model']})"
        )
    verdict = (
        checks["lost"] == 0
        and checks["duplicate_serials"] == 0
        and checks["refusals_without_retry_advice"] == 0
        and checks["ledger_reconciled"]
    )
    print(
        f"lost {checks['lost']}, duplicate serials {checks['duplicate_serials']}, refusals "
        f"without retry advice {checks['refusals_without_retry_advice']}, ledger "
        f"{'reconciled' if checks['ledger_reconciled'] else 'NOT reconciled'}: "
        f"{'target met' if verdict else 'target NOT met'}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="short",
        help="short: 3 days in 2 minutes (make bench); long: 7 days in 10 minutes",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="folder of the JSON and PNG (bench/results)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's folder (every process's log)"
    )
    args = parser.parse_args(argv)
    report = _json_safe(run(PROFILES[args.profile], args.profile, args.keep))
    stem = "cpns_day" if args.profile == "short" else f"cpns_day_{args.profile}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, args.out / f"{stem}.png")
    _print(report)
    print(f"wrote {args.out / (stem + '.json')} and {stem}.png")


if __name__ == "__main__":
    main()
