"""End-to-end load: gRPC submit -> outbox -> RabbitMQ -> signing workers -> stamped PDF -> download.

The whole distributed platform runs as separate processes on this machine
(:class:`tests.support.launch.DistributedPlatform`: ``meterai serve quota|stamping|signing|
verify``, ``meterai worker signing`` and ``meterai worker finishing``), on a fresh PostgreSQL
database and a private RabbitMQ virtual host, both created for the run and removed afterwards.
Every document is the 1-page, 100 KB scanned letter ``jpeg.pdf`` of the shared PDF corpus.

The load comes from a separate process (``multiprocessing``, spawn) driving ``grpc.aio`` with a
bounded number of calls in flight, a unique idempotency key per submission, and the work spread
over several resellers (each reseller's quota holds serialise on its own ledger row, so one
reseller would measure that row rather than the platform). Phases, in order:

1. **Baselines**, before the platform starts: the host's speed on two fixed workloads (a pure
   Python loop and SHA-256, see :func:`_host_reference`), RabbitMQ confirmed persistent
   publishes per second on one connection (py-amqp, waiting for each confirm, to a durable
   quorum queue like ours),
   and Celery no-op tasks per second end to end (send to executed, one worker with two prefork
   processes, no result backend, Celery's defaults otherwise).
2. **Sustained throughput** with one, then two signing worker processes: closed loop, each of
   N client tasks submits, waits for its job to be DONE (read from the ``jobs`` table by primary
   key every 20 ms) and downloads the stamped PDF over ``GetStampedDocument``; every document is
   downloaded, none is sampled. The figure is downloads completed per second in the measured
   window, after a warm-up.
3. **Latency at 150 per second offered**: open loop (submissions leave on a fixed schedule
   whatever the answers, so queueing shows up as latency instead of slowing the client down).
   Latency is from the moment the client sends a submission to the job's DONE commit
   (``jobs.updated_at``: signed, embedded and stored), on the same wall clock.
4. **Surge**: open loop at five times the sustained two-worker rate for 60 s, with the backlog
   high-water mark set to a few seconds of capacity so the platform must refuse. Refusals are
   RESOURCE_EXHAUSTED answers; their latency is measured by the client. Drain is the time from
   the end of the surge to the DONE commit of the last accepted job. *Lost* counts accepted jobs
   (the client saw a job id) that never reached DONE; *duplicate serials* counts serials given
   to more than one accepted job, in the answers and in the database.

While each phase runs, the CPU time of every process involved is read from ``/proc`` and
reported as a share of one core, which shows what limits the throughput.

Run: ``.venv/bin/python bench/e2e.py`` (about 4-5 minutes; writes ``bench/results/e2e.json``), or
``--quick`` for a shorter check that it works (short phases, 15 s surge, no JSON).
Needs RabbitMQ (``rabbitmqctl`` as root) and PostgreSQL on 127.0.0.1 (``make services``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import amqp
import grpc
import grpc.aio
import psycopg

from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai_common.messaging import SIGNING_QUEUE, STAMPING_EVENTS

if TYPE_CHECKING:
    from tests.support.launch import DistributedPlatform

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "pdf-corpus"
DOCUMENT = CORPUS / "jpeg.pdf"
RESULTS = Path(__file__).parent / "results" / "e2e.json"

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
AMQP_BASE = "amqp://guest:guest@127.0.0.1:5672"
RECT = (400.0, 50.0, 520.0, 170.0)
"""Seal rectangle on the A4 page of ``jpeg.pdf``, in PDF points."""
TERMINAL = ("DONE", "FAILED", "DEAD_LETTERED")
PUSHBACK_TRAILER = "grpc-retry-pushback-ms"

TARGET_SUSTAINED_PER_S = 200.0
TARGET_LATENCY_P99_MS = 1000.0
TARGET_REFUSAL_P99_MS = 100.0
LATENCY_RATE_PER_S = 150.0
SURGE_FACTOR = 5.0
STAMPING_PROCESSES = 1
"""Stamping processes behind gRPC round-robin, each started with finishing off
(``METERAI_STAMPING_FINISHERS=0``) and one ``meterai worker finishing`` process beside them, so
the process answering resellers does nothing else. Both kinds scale out like signing workers;
on this 2-core machine the CPU is spent with one of each. Raise it on bigger hosts."""

PUBLISH_QUEUE = "bench.baseline.publish"
NOOP_QUEUE = "bench.baseline.noop"
NOOP_TASK = "bench.baseline.noop"


@dataclass(frozen=True)
class Plan:
    """Durations and sizes of one run; :meth:`quick` shortens every phase."""

    warmup_s: float = 5.0
    sustained_s: float = 20.0
    """Measured window of each sustained phase, after ``warmup_s``."""
    latency_s: float = 30.0
    surge_s: float = 60.0
    closed_clients: int = 48
    """Documents in the pipeline during the sustained phases: below the stamping server's 64
    concurrent RPCs, so the client never trips that limit itself."""
    open_max_inflight: int = 256
    """Bound on submissions in flight in the open-loop phases; a send due while the bound is
    reached is counted as skipped, never delayed (it would hide latency)."""
    resellers: int = 8
    units_per_reseller: int = 20_000
    high_water: int = 500
    """``METERAI_BACKLOG_HIGH_WATER``: documents waiting for a signature above which the
    platform refuses; two to seven seconds of this machine's capacity."""
    max_wait_ms: int = 500
    """``METERAI_BACKLOG_MAX_WAIT_MS``: the backlog may also hold at most this much work at the
    recent finishing rate, so an accepted document is stamped within about a second whatever
    the host's speed; what does not fit is refused with pushback."""
    publish_s: float = 3.0
    celery_tasks: int = 6_000
    insecure: bool = False
    """Run every channel in plaintext (``--insecure``): the comparison that prices TLS."""
    quick_floor: bool = False
    """Time the in-process floor (prepare + sign + embed) with few samples."""

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            warmup_s=2.0,
            sustained_s=6.0,
            latency_s=8.0,
            surge_s=15.0,
            units_per_reseller=5_000,
            publish_s=1.0,
            celery_tasks=2_000,
            quick_floor=True,
        )


# -- load generator (runs in its own process) ----------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    """What the load-generator process does in one phase."""

    mode: Literal["closed", "open"]
    target: str
    """``host:port`` of the stamping service."""
    api_keys: tuple[str, ...]
    conninfo: str
    """libpq URI of the run's database (the closed loop reads job states there)."""
    seconds: float
    warmup_s: float = 0.0
    rate_per_s: float = 0.0
    concurrency: int = 48
    ca: bytes | None = None
    """The platform CA the load generator trusts; None runs plaintext (``--insecure``)."""


Record = tuple[float, float, str, str, str, int]
"""One open-loop submission: (sent at, wall clock s; answered after, s; status code name or
``OK`` / ``SKIPPED``; job id; serial; pushback ms or -1)."""


def _request(pdf: bytes) -> stamping_pb2.SubmitDocumentRequest:
    x0, y0, x1, y1 = RECT
    return stamping_pb2.SubmitDocumentRequest(
        pdf=pdf,
        placement=stamping_pb2.Placement(
            page=1, rect=stamping_pb2.Rect(x0=x0, y0=y0, x1=x1, y1=y1)
        ),
        metadata=stamping_pb2.DocumentMetadata(
            document_type="Surat Pernyataan", document_number="BENCH", document_date="2025-01-01"
        ),
        idempotency_key=uuid.uuid4().hex,
        filename="jpeg.pdf",
    )


def _pushback_ms(error: grpc.aio.AioRpcError) -> int:
    for key, value in error.trailing_metadata() or ():
        if key == PUSHBACK_TRAILER:
            return int(value)
    return -1


async def _closed_loop(
    spec: LoadSpec, stub: stamping_pb2_grpc.StampingServiceStub, pdf: bytes
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[str]] = {}
    finished: list[float] = []
    errors: Counter[str] = Counter()
    downloaded = 0
    start = time.monotonic()
    window_start = start + spec.warmup_s
    window_end = window_start + spec.seconds

    async def poll(db: psycopg.AsyncConnection[Any]) -> None:
        while True:
            await asyncio.sleep(0.02)
            if not waiting:
                continue
            cursor = await db.execute(
                "SELECT job_id, state FROM jobs WHERE job_id = ANY(%s) AND state = ANY(%s)",
                (list(waiting), list(TERMINAL)),
            )
            for job_id, state in await cursor.fetchall():
                future = waiting.pop(job_id, None)
                if future is not None and not future.done():
                    future.set_result(state)

    async def client(index: int) -> None:
        nonlocal downloaded
        metadata = (("x-api-key", spec.api_keys[index % len(spec.api_keys)]),)
        while time.monotonic() < window_end:
            try:
                job = await stub.SubmitDocument(_request(pdf), metadata=metadata, timeout=30)
            except grpc.aio.AioRpcError as error:
                errors[f"submit {error.code().name}"] += 1
                # Like the SDK's retry policy: come back when the server said to.
                pushback = _pushback_ms(error)
                await asyncio.sleep(pushback / 1000 if pushback >= 0 else 0.05)
                continue
            future: asyncio.Future[str] = loop.create_future()
            waiting[job.job_id] = future
            try:
                state = await asyncio.wait_for(future, 120)
            except TimeoutError:
                waiting.pop(job.job_id, None)
                errors["not done within 120 s"] += 1
                continue
            if state != "DONE":
                errors[f"job {state}"] += 1
                continue
            size = 0
            try:
                async for chunk in stub.GetStampedDocument(
                    stamping_pb2.GetStampedDocumentRequest(job_id=job.job_id),
                    metadata=metadata,
                    timeout=30,
                ):
                    size += len(chunk.data)
            except grpc.aio.AioRpcError as error:
                errors[f"download {error.code().name}"] += 1
                continue
            if size <= len(pdf):
                errors["download shorter than the source"] += 1
                continue
            downloaded += size
            finished.append(time.monotonic())

    # Planned on every call, not prepared: a plan cached while ``jobs`` is nearly empty scans the
    # whole table on every poll once it has grown, and that cost would be charged to the platform.
    async with await psycopg.AsyncConnection.connect(
        spec.conninfo, autocommit=True, prepare_threshold=None
    ) as db:
        poller = asyncio.create_task(poll(db))
        try:
            await asyncio.gather(*(client(i) for i in range(spec.concurrency)))
        finally:
            poller.cancel()
    in_window = sum(1 for t in finished if window_start <= t < window_end)
    return {
        "completed_in_window": in_window,
        "per_s": in_window / spec.seconds,
        "completed_total": len(finished),
        "downloaded_bytes": downloaded,
        "errors": dict(errors),
    }


async def _open_loop(
    spec: LoadSpec, stub: stamping_pb2_grpc.StampingServiceStub, pdf: bytes
) -> dict[str, Any]:
    records: list[Record] = []
    pending: set[asyncio.Task[None]] = set()
    inflight = 0

    async def submit(index: int) -> None:
        nonlocal inflight
        metadata = (("x-api-key", spec.api_keys[index % len(spec.api_keys)]),)
        request = _request(pdf)
        sent = time.time()
        began = time.monotonic()
        try:
            job = await stub.SubmitDocument(request, metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError as error:
            elapsed = time.monotonic() - began
            records.append((sent, elapsed, error.code().name, "", "", _pushback_ms(error)))
        else:
            elapsed = time.monotonic() - began
            records.append((sent, elapsed, "OK", job.job_id, job.serial, -1))
        finally:
            inflight -= 1

    start = time.monotonic()
    end = start + spec.seconds
    sent = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = min(int((now - start) * spec.rate_per_s) + 1, int(spec.seconds * spec.rate_per_s))
        while sent < due:
            if inflight >= spec.concurrency:
                records.append((time.time(), 0.0, "SKIPPED", "", "", -1))
            else:
                inflight += 1
                task = asyncio.create_task(submit(sent))
                pending.add(task)
                task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / spec.rate_per_s - time.monotonic()))
    offer_end = time.time()
    offered_s = time.monotonic() - start
    await asyncio.gather(*pending)
    return {"records": records, "offered_s": offered_s, "offer_end_wall": offer_end}


async def _drive(spec: LoadSpec, ready: Any, go: Any) -> dict[str, Any]:
    pdf = DOCUMENT.read_bytes()
    options = [
        ("grpc.max_send_message_length", 32 * 1024 * 1024),
        ("grpc.max_receive_message_length", 32 * 1024 * 1024),
        ("grpc.enable_retries", 0),
        ("grpc.lb_policy_name", "round_robin"),
    ]
    channel_of = (
        grpc.aio.insecure_channel(spec.target, options=options)
        if spec.ca is None
        else grpc.aio.secure_channel(
            spec.target, grpc.ssl_channel_credentials(spec.ca), options=options
        )
    )
    async with channel_of as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        stub = stamping_pb2_grpc.StampingServiceStub(channel)
        ready.set()
        await asyncio.to_thread(go.wait)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        if spec.mode == "closed":
            outcome = await _closed_loop(spec, stub, pdf)
        else:
            outcome = await _open_loop(spec, stub, pdf)
        after = resource.getrusage(resource.RUSAGE_SELF)
    outcome["cpu_s"] = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return outcome


def _load_generator(spec: LoadSpec, ready: Any, go: Any, results: Any) -> None:
    results.put(asyncio.run(_drive(spec, ready, go)))


# -- CPU accounting from /proc ---------------------------------------------------------------


_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command name, CPU ticks) for every live process.

    The ticks include those of the process's children that have ended and been reaped, so the
    PostgreSQL server is charged for sessions that opened and closed within a phase."""
    table: dict[int, tuple[int, str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), name, sum(int(v) for v in fields[11:15]))
    return table


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, summed over all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


@dataclass
class CpuSnapshot:
    at: float
    groups: dict[str, dict[int, int]]
    machine: tuple[int, int]
    sessions: int
    """Sessions ever opened on the run's database (``pg_stat_database.sessions``)."""


@dataclass
class Profiler:
    """Groups the processes of the run and measures their CPU share between two snapshots."""

    platform: DistributedPlatform
    database: str
    conninfo: str

    def snapshot(self) -> CpuSnapshot:
        with psycopg.connect(self.conninfo, autocommit=True) as db:
            rows = db.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
            ).fetchall()
            opened = db.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", (self.database,)
            ).fetchone()
        ours = {int(pid) for (pid,) in rows}
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in table.items():
            children.setdefault(parent, []).append(pid)

        def tree(root: int) -> set[int]:
            found, todo = set(), [root]
            while todo:
                pid = todo.pop()
                if pid in table and pid not in found:
                    found.add(pid)
                    todo.extend(children.get(pid, ()))
            return found

        members: dict[str, set[int]] = {}
        for name, process in self.platform.processes.items():
            service = name.split("-")[0]  # stamping-2 counts as the stamping service
            group = {"worker": "signing workers", "finisher": "finishing workers"}.get(
                service, f"{service} service"
            )
            members.setdefault(group, set()).update(tree(process.pid))
        members["bench orchestrator"] = {os.getpid()}
        postgres = {pid for pid, (_, name, _) in table.items() if name == "postgres"}
        members["postgresql (this run's sessions)"] = postgres & ours
        members["postgresql (server, other and ended sessions)"] = postgres - ours
        members["rabbitmq"] = {pid for pid, (_, name, _) in table.items() if name == "beam.smp"}
        groups = {
            group: {pid: table[pid][2] for pid in pids if pid in table}
            for group, pids in members.items()
        }
        sessions = int(opened[0]) if opened else 0
        return CpuSnapshot(time.monotonic(), groups, _machine_ticks(), sessions)

    @staticmethod
    def shares(
        before: CpuSnapshot, after: CpuSnapshot, loadgen_cpu_s: float | None
    ) -> dict[str, float]:
        """Per group, CPU seconds used per wall second, in percent of one core."""
        wall = after.at - before.at
        shares: dict[str, float] = {}
        accounted = 0.0
        for group, ticks in after.groups.items():
            earlier = before.groups.get(group, {})
            used = sum(t - earlier.get(pid, 0) for pid, t in ticks.items()) * _TICK_S
            shares[group] = used
            accounted += used
        if loadgen_cpu_s is not None:
            shares["load generator"] = loadgen_cpu_s
            accounted += loadgen_cpu_s
        busy = (after.machine[0] - before.machine[0]) * _TICK_S
        shares["rest of the machine (not this run)"] = max(0.0, busy - accounted)
        shares["machine total"] = busy
        return {group: round(100 * used / wall, 1) for group, used in shares.items()}


class StageSampler:
    """Where documents wait while a phase runs, sampled every ``interval`` seconds.

    A pipeline is as fast as its slowest stage, and work piles up in front of it: unpublished
    outbox rows wait for the stamping service's relay, ready ``signing`` messages for the
    signing workers, ready ``stamping.events`` messages for the stamping service's event
    consumer (embed the signature, commit DONE).
    """

    STAGES = (
        "outbox_unpublished",
        "signing_queue_ready",
        "events_queue_ready",
        "jobs_waiting_for_signature",
    )

    def __init__(self, conninfo: str, vhost: str, interval: float = 0.5) -> None:
        self._conninfo = conninfo
        self._vhost = vhost
        self._interval = interval
        self._samples: dict[str, list[int]] = {stage: [] for stage in self.STAGES}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-stages", daemon=True)

    def __enter__(self) -> StageSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample_until_stopped()
            except (psycopg.Error, amqp.exceptions.AMQPError, OSError):
                # A restarted database or broker costs samples, never the run.
                self._stop.wait(self._interval)

    def _sample_until_stopped(self) -> None:
        connection = _amqp_connection(self._vhost)
        try:
            channel = connection.channel()
            with psycopg.connect(self._conninfo, autocommit=True) as db:
                while not self._stop.wait(self._interval):
                    row = db.execute(
                        "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),"
                        " (SELECT count(*) FROM jobs WHERE state = 'PREPARED')"
                    ).fetchone()
                    assert row is not None
                    self._samples["outbox_unpublished"].append(int(row[0]))
                    self._samples["jobs_waiting_for_signature"].append(int(row[1]))
                    for stage, queue in (
                        ("signing_queue_ready", SIGNING_QUEUE),
                        ("events_queue_ready", STAMPING_EVENTS.name),
                    ):
                        declared = channel.queue_declare(queue, passive=True)
                        self._samples[stage].append(int(declared.message_count))
        finally:
            with contextlib.suppress(OSError, amqp.exceptions.AMQPError):
                connection.close()

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and maximum of each stage's queue over the phase."""
        return {
            stage: {
                "mean": round(sum(values) / len(values), 1) if values else 0.0,
                "max": max(values, default=0),
            }
            for stage, values in self._samples.items()
        }


@dataclass
class PhaseResult:
    outcome: dict[str, Any]
    cpu: dict[str, float]
    """CPU share per process group, in percent of one core."""
    stages: dict[str, dict[str, float]]
    sessions_per_s: float
    """New PostgreSQL sessions per second on the run's database: connection churn."""


def _run_load(spec: LoadSpec, profiler: Profiler, vhost: str) -> PhaseResult:
    """Run one phase in a fresh load-generator process, measuring CPU and stage queues."""
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Event(), context.Event(), context.Queue()
    process = context.Process(
        target=_load_generator, args=(spec, ready, go, results), name="e2e-load"
    )
    process.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the load generator did not connect to the stamping service")
        with StageSampler(profiler.conninfo, vhost) as stages:
            before = profiler.snapshot()
            go.set()
            outcome: dict[str, Any] = results.get(timeout=spec.warmup_s + spec.seconds + 600)
            after = profiler.snapshot()
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
    cpu = Profiler.shares(before, after, outcome.pop("cpu_s"))
    # The counter restarts with PostgreSQL; a negative difference means it restarted.
    sessions = max(0, after.sessions - before.sessions) / (after.at - before.at)
    return PhaseResult(outcome, cpu, stages.summary(), round(sessions, 1))


# -- baselines ---------------------------------------------------------------------------------


def _amqp_connection(vhost: str, *, confirm: bool = False) -> amqp.Connection:
    connection = amqp.Connection(
        host="127.0.0.1:5672",
        userid="guest",
        password="guest",
        virtual_host=vhost,
        confirm_publish=confirm,
    )
    connection.connect()
    return connection


def _host_reference() -> dict[str, float]:
    """CPU speed of this host now, on work that does not depend on the platform: pure Python
    (what most of the platform's CPU is) and SHA-256 (C, with the CPU's SHA extensions).

    The machine this runs on is shared: between runs days apart the same code measured 13 and
    19 ms of CPU per stamp. These figures, taken on the idle machine before the platform starts,
    say how fast the host was in this run, so runs can be compared.
    """

    def python_loop() -> None:
        total = 0
        for i in range(1_000_000):
            total += i & 7

    data = bytes(9_000_000)
    figures: dict[str, float] = {}
    for name, work in (
        ("python_loop_1m_ms", python_loop),
        ("sha256_9mb_ms", lambda: hashlib.sha256(data).digest()),
    ):
        samples = []
        for _ in range(7):
            started = time.perf_counter()
            work()
            samples.append((time.perf_counter() - started) * 1000)
        figures[name] = round(sorted(samples)[len(samples) // 2], 2)
    return figures


def _confirmed_publish_rate(vhost: str, seconds: float) -> float:
    """Persistent 256-byte messages to a durable quorum queue, each publish waiting for its
    confirm, on one connection: what one publisher that needs each message safe can do."""
    connection = _amqp_connection(vhost, confirm=True)
    try:
        channel = connection.channel()
        channel.queue_declare(
            PUBLISH_QUEUE, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"}
        )
        message = amqp.Message(b"\0" * 256, delivery_mode=2)
        for _ in range(200):
            channel.basic_publish(message, exchange="", routing_key=PUBLISH_QUEUE)
        count = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            channel.basic_publish(message, exchange="", routing_key=PUBLISH_QUEUE)
            count += 1
        rate = count / (time.monotonic() - start)
        channel.queue_delete(PUBLISH_QUEUE)
        return rate
    finally:
        connection.close()


def _noop_celery(amqp_url: str) -> Any:
    from celery import Celery

    app = Celery("bench-baseline", broker=amqp_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=NOOP_QUEUE,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name=NOOP_TASK)
    def noop() -> None:
        return None

    return app


def noop_worker_main(amqp_url: str) -> None:
    """The Celery baseline's worker process: two prefork children, Celery's defaults."""
    _noop_celery(amqp_url).worker_main(
        [
            "worker",
            "--loglevel=WARNING",
            f"--queues={NOOP_QUEUE}",
            "--concurrency=2",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            f"--hostname=bench-noop-{os.getpid()}@%h",
        ]
    )


def _celery_noop_rate(amqp_url: str, vhost: str, tasks: int, log: Path) -> float:
    """Send ``tasks`` no-op tasks to a running worker; tasks per second from the first send to
    the queue being empty (at most a prefetch window of 8 tasks is then still executing)."""
    app = _noop_celery(amqp_url)
    connection = _amqp_connection(vhost)
    channel = connection.channel()
    channel.queue_declare(NOOP_QUEUE, durable=True, auto_delete=False)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    with log.open("ab") as output:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from bench.e2e import noop_worker_main; noop_worker_main(sys.argv[1])",
                amqp_url,
            ],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while channel.queue_declare(NOOP_QUEUE, passive=True).consumer_count < 1:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Celery baseline worker did not start:\n{log.read_text()}")
            time.sleep(0.1)
        with app.producer_or_acquire() as producer:
            app.send_task(NOOP_TASK, producer=producer)
            time.sleep(0.5)
            start = time.monotonic()
            for _ in range(tasks):
                app.send_task(NOOP_TASK, producer=producer)
        while channel.queue_declare(NOOP_QUEUE, passive=True).message_count > 0:
            if time.monotonic() - start > 120:
                raise RuntimeError("Celery baseline worker stopped consuming")
            time.sleep(0.005)
        return tasks / (time.monotonic() - start)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        channel.queue_delete(NOOP_QUEUE)
        connection.close()


# -- the run -----------------------------------------------------------------------------------


def _rabbitmqctl(*args: str) -> None:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        raise SystemExit("rabbitmqctl is missing: RabbitMQ must be installed (make services)")
    result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr}")


def bench_env(high_water: int, max_wait_ms: int) -> dict[str, str]:
    """The platform as the benchmarks run it: the dev payment provider, the given backlog
    limits, per-reseller limits lifted (the load is the platform's, not one reseller's), and
    finishing in ``meterai worker finishing`` processes instead of the stamping service."""
    return {
        "METERAI_PAYMENT_PROVIDER": "dev",
        "METERAI_BACKLOG_HIGH_WATER": str(high_water),
        "METERAI_BACKLOG_MAX_WAIT_MS": str(max_wait_ms),
        "METERAI_RESELLER_RATE": "1000000",
        "METERAI_RESELLER_BURST": "1000000",
        "METERAI_RESELLER_MAX_INFLIGHT": "1000000",
        "METERAI_STAMPING_FINISHERS": "0",
    }


def _admin_sql(statement: str, attempts: int = 30) -> None:
    """Run one statement on the maintenance database, retrying for a while if PostgreSQL is
    restarting (other work on a shared machine may restart it), so a run never leaves its
    database behind."""
    for attempt in range(attempts):
        try:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
                admin.execute(statement)  # type: ignore[arg-type]
            return
        except psycopg.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(1)


def _percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def _create_resellers(database_url: str, count: int) -> list[str]:
    """Resellers with their API keys, created the way ``meterai admin create-reseller`` does."""
    from meterai_common.db import create_engine, run_in_transaction
    from meterai_quota.bootstrap import create_principal

    engine = create_engine(database_url)
    try:
        return run_in_transaction(
            engine,
            lambda conn: [create_principal(conn, f"bench-e2e-{i}")[1] for i in range(count)],
        )
    finally:
        engine.dispose()


def _channel(address: str, ca: bytes | None) -> grpc.Channel:
    if ca is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(ca))


def _buy_quota(address: str, api_keys: Iterable[str], units: int, ca: bytes | None) -> None:
    with _channel(address, ca) as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)
        for key in api_keys:
            order = stub.PurchaseQuota(
                quota_pb2.PurchaseQuotaRequest(quantity=units, idempotency_key=uuid.uuid4().hex),
                metadata=(("x-api-key", key),),
                timeout=60,
            )
            if order.state != quota_pb2.ORDER_STATE_PAID:
                raise RuntimeError("the dev payment provider did not credit the order at once")


def _wait_serving(ports: list[int], ca: bytes | None, timeout: float = 60) -> None:
    """Wait until the stamping process on each port answers its health check."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    for port in ports:
        with _channel(f"127.0.0.1:{port}", ca) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"stamping on port {port} not serving after {timeout} s")
                time.sleep(0.2)


def _wait_workers(platform: DistributedPlatform, count: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        result = platform.cli("admin", "queues", "--json")
        if result.code == 0 and result.json()["summary"]["signing_workers"] == count:  # type: ignore[index]
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} signing workers not consuming after 60 s: {result.stdout}")
        time.sleep(0.5)


def _settle(conninfo: str, timeout: float = 300) -> int:
    """Wait until no job is waiting for the signing tier, so phases do not overlap; return how
    many were still unfinished at ``timeout`` (0 when everything settled)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo, autocommit=True) as db:
        while True:
            row = db.execute(
                "SELECT count(*) FROM jobs WHERE state <> ALL(%s)", (list(TERMINAL),)
            ).fetchone()
            unfinished = int(row[0]) if row else 0
            if unfinished == 0 or time.monotonic() > deadline:
                if unfinished:
                    print(
                        f"warning: {unfinished} jobs unfinished after {timeout:.0f} s", flush=True
                    )
                return unfinished
            time.sleep(0.1)


def _postmaster_started(conninfo: str) -> str:
    with psycopg.connect(conninfo, autocommit=True) as db:
        row = db.execute("SELECT pg_postmaster_start_time()").fetchone()
    return str(row[0]) if row else ""


def _job_rows(conninfo: str, job_ids: Sequence[str]) -> dict[str, tuple[str, datetime, datetime]]:
    with psycopg.connect(conninfo, autocommit=True) as db:
        rows = db.execute(
            "SELECT job_id, state, created_at, updated_at FROM jobs WHERE job_id = ANY(%s)",
            (list(job_ids),),
        ).fetchall()
    return {job_id: (state, created, updated) for job_id, state, created, updated in rows}


def _database_checks(conninfo: str, database_url: str) -> dict[str, Any]:
    """Whole-run invariants: serials unique and issued once, nothing stuck, ledger balanced."""
    from meterai_common.db import create_engine
    from meterai_quota import reconcile

    with psycopg.connect(conninfo, autocommit=True) as db:

        def one(sql: str) -> int:
            row = db.execute(sql).fetchone()
            return int(row[0]) if row else 0

        checks: dict[str, Any] = {
            "jobs_total": one("SELECT count(*) FROM jobs"),
            "jobs_done": one("SELECT count(*) FROM jobs WHERE state = 'DONE'"),
            "jobs_failed": one("SELECT count(*) FROM jobs WHERE state <> 'DONE'"),
            "duplicate_serials_in_jobs": one(
                "SELECT count(*) - count(DISTINCT serial) FROM jobs WHERE serial IS NOT NULL"
            ),
            "done_jobs_without_their_issued_serial": one(
                "SELECT count(*) FROM jobs j LEFT JOIN quota_serials s ON s.job_id = j.job_id"
                " WHERE j.state = 'DONE'"
                " AND (s.serial IS NULL OR s.serial <> j.serial OR s.status <> 'ISSUED')"
            ),
        }
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            report = reconcile(conn)
    finally:
        engine.dispose()
    checks["ledger_reconciled"] = report.ok
    if not report.ok:
        checks["ledger_problems"] = list(report.lines())
    return checks


def _surge_figures(
    outcome: dict[str, Any], rate: float, conninfo: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    records: list[Record] = outcome["records"]
    accepted = [r for r in records if r[2] == "OK"]
    refused = [r for r in records if r[2] == "RESOURCE_EXHAUSTED"]
    with_trailer = [r for r in refused if r[5] >= 0]
    others = Counter(r[2] for r in records if r[2] not in ("OK", "RESOURCE_EXHAUSTED", "SKIPPED"))
    skipped = sum(1 for r in records if r[2] == "SKIPPED")
    rows = _job_rows(conninfo, [r[3] for r in accepted])
    states = Counter(rows[r[3]][0] if r[3] in rows else "MISSING" for r in accepted)
    # A job that FAILED told its client why and refunded its unit; a lost one vanished or
    # never finished.
    lost = sum(n for state, n in states.items() if state not in TERMINAL)
    serials = [r[4] for r in accepted]
    done_at = [rows[r[3]][2].timestamp() for r in accepted if r[3] in rows]
    drain = max(0.0, max(done_at) - outcome["offer_end_wall"]) if done_at else 0.0
    sent = len(records) - skipped
    surge = {
        "offered_per_s": round(sent / outcome["offered_s"], 1),
        "accepted": len(accepted),
        "refused": len(refused),
        "refusal_p99_ms": round(_percentile([r[1] for r in refused], 99) * 1000, 1),
        "drain_s": round(drain, 2),
        "lost": lost,
        "duplicate_serials": len(serials) - len(set(serials)),
    }
    details = {
        "target_offered_per_s": round(rate, 1),
        "seconds": round(outcome["offered_s"], 1),
        "refused_with_pushback_trailer": len(with_trailer),
        "refused_without_trailer": len(refused) - len(with_trailer),
        "pushback_ms_values": sorted({r[5] for r in with_trailer}),
        "refusal_p50_ms": round(_percentile([r[1] for r in refused], 50) * 1000, 1),
        "accept_p50_ms": round(_percentile([r[1] for r in accepted], 50) * 1000, 1),
        "accept_p99_ms": round(_percentile([r[1] for r in accepted], 99) * 1000, 1),
        "accepted_by_final_state": dict(states),
        "other_errors": dict(others),
        "skipped_client_bound": skipped,
        "accepted_per_s": round(len(accepted) / outcome["offered_s"], 1),
    }
    return surge, details


def _latency_figures(
    outcome: dict[str, Any], conninfo: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    records: list[Record] = outcome["records"]
    accepted = [r for r in records if r[2] == "OK"]
    rows = _job_rows(conninfo, [r[3] for r in accepted])
    end_to_end, server = [], []
    for sent, _, _, job_id, _, _ in accepted:
        state, created, updated = rows.get(job_id, ("MISSING", None, None))
        if state == "DONE" and created is not None and updated is not None:
            end_to_end.append(updated.timestamp() - sent)
            server.append((updated - created).total_seconds())
    latency = {
        "p50_ms": round(_percentile(end_to_end, 50) * 1000, 1),
        "p95_ms": round(_percentile(end_to_end, 95) * 1000, 1),
        "p99_ms": round(_percentile(end_to_end, 99) * 1000, 1),
    }
    details = {
        "offered_per_s": round((len(records)) / outcome["offered_s"], 1),
        "accepted": len(accepted),
        "done": len(end_to_end),
        "not_accepted": dict(Counter(r[2] for r in records if r[2] != "OK")),
        "submit_rpc_p50_ms": round(_percentile([r[1] for r in accepted], 50) * 1000, 1),
        "submit_rpc_p99_ms": round(_percentile([r[1] for r in accepted], 99) * 1000, 1),
        "server_created_to_done_p50_ms": round(_percentile(server, 50) * 1000, 1),
        "server_created_to_done_p99_ms": round(_percentile(server, 99) * 1000, 1),
    }
    return latency, details


def run(plan: Plan) -> dict[str, Any]:
    """Set up a private database and vhost, run every phase, tear everything down."""
    from tests.support.launch import DistributedPlatform

    if not DOCUMENT.is_file():
        raise SystemExit(f"the benchmark document is missing: {DOCUMENT}")
    suffix = uuid.uuid4().hex[:10]
    database = f"meterai_e2e_{suffix}"
    vhost = f"meterai-e2e-{suffix}"
    conninfo = f"{POSTGRES}/{database}"
    database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    amqp_url = f"{AMQP_BASE}/{vhost}"
    home = Path(tempfile.mkdtemp(prefix="meterai-e2e-"))
    load_before = os.getloadavg()[0]
    postgres_started = _postmaster_started(f"{POSTGRES}/postgres")
    _admin_sql(f'CREATE DATABASE "{database}"')
    _rabbitmqctl("add_vhost", vhost)
    platform = DistributedPlatform(home)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        print("baselines ...", flush=True)
        host = _host_reference()
        floor_ms = _engine_floor_ms(plan.quick_floor)
        publish_rate = _confirmed_publish_rate(vhost, plan.publish_s)
        celery_rate = _celery_noop_rate(amqp_url, vhost, plan.celery_tasks, home / "noop.log")

        print("starting the platform (1 signing worker) ...", flush=True)
        platform.start(
            database_url,
            amqp_url,
            workers=1,
            extra_env={
                **bench_env(plan.high_water, plan.max_wait_ms),
                **({"METERAI_INSECURE": "1"} if plan.insecure else {}),
            },
        )
        ca = None if plan.insecure else (home / "tls" / "ca.crt").read_bytes()
        platform.add_finisher("finisher-1")
        keys = tuple(_create_resellers(database_url, plan.resellers))
        _buy_quota(f"127.0.0.1:{platform.base_port}", keys, plan.units_per_reseller, ca)
        _wait_workers(platform, 1)
        ports = [platform.base_port + 1]
        ports += [platform.add_stamping(f"stamping-{i}") for i in range(2, STAMPING_PROCESSES + 1)]
        _wait_serving(ports, ca)
        profiler = Profiler(platform, database, conninfo)
        # Clients spread calls over every stamping process (gRPC round-robin balancing).
        target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)

        def closed() -> LoadSpec:
            return LoadSpec(
                "closed",
                target,
                keys,
                conninfo,
                plan.sustained_s,
                warmup_s=plan.warmup_s,
                concurrency=plan.closed_clients,
                ca=ca,
            )

        profile: dict[str, dict[str, float]] = {}
        stages: dict[str, dict[str, dict[str, float]]] = {}
        sessions: dict[str, float] = {}
        details: dict[str, Any] = {}

        def phase(name: str, spec: LoadSpec) -> dict[str, Any]:
            result = _run_load(spec, profiler, vhost)
            profile[name], stages[name] = result.cpu, result.stages
            sessions[name] = result.sessions_per_s
            return result.outcome

        sustained: dict[str, float] = {}
        for workers in (1, 2):
            if workers == 2:
                platform.add_worker("worker-1")
                _wait_workers(platform, 2)
            print(f"sustained, {workers} signing worker(s) ...", flush=True)
            outcome = phase(f"sustained_workers_{workers}", closed())
            sustained[f"workers_{workers}_per_s"] = round(outcome["per_s"], 1)
            details[f"sustained_workers_{workers}"] = outcome
            _settle(conninfo)

        print(f"latency at {LATENCY_RATE_PER_S:g}/s offered ...", flush=True)
        open_spec = LoadSpec(
            "open",
            target,
            keys,
            conninfo,
            plan.latency_s,
            rate_per_s=LATENCY_RATE_PER_S,
            concurrency=plan.open_max_inflight,
            ca=ca,
        )
        outcome = phase("latency_at_150_per_s", open_spec)
        _settle(conninfo)
        latency, details["latency_at_150_per_s"] = _latency_figures(outcome, conninfo)

        surge_rate = SURGE_FACTOR * max(sustained["workers_2_per_s"], 1.0)
        print(f"surge at {surge_rate:.0f}/s for {plan.surge_s:g} s ...", flush=True)
        surge_spec = LoadSpec(
            "open",
            target,
            keys,
            conninfo,
            plan.surge_s,
            rate_per_s=surge_rate,
            concurrency=plan.open_max_inflight,
            ca=ca,
        )
        outcome = phase("surge", surge_spec)
        _settle(conninfo)
        surge, details["surge"] = _surge_figures(outcome, surge_rate, conninfo)
        details["database_checks"] = _database_checks(conninfo, database_url)
        details["postgresql_restarted_during_run"] = (
            _postmaster_started(conninfo) != postgres_started
        )
        surge["duplicate_serials"] += details["database_checks"]["duplicate_serials_in_jobs"]
    finally:
        platform.stop()
        try:
            _admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            _rabbitmqctl("delete_vhost", vhost)
            shutil.rmtree(home, ignore_errors=True)

    best = sustained["workers_2_per_s"]
    cpu_per_stamp = _cpu_ms_per_stamp(profile["sustained_workers_2"], best)
    at_150 = details["latency_at_150_per_s"]
    offered_150 = at_150["accepted"] + sum(at_150["not_accepted"].values())
    return {
        "sustained": sustained,
        "cpu_ms_per_stamp": cpu_per_stamp,
        "accepted_ratio_at_150_per_s": round(at_150["accepted"] / max(offered_150, 1), 3),
        "latency_at_150_per_s": latency,
        "surge": surge,
        "targets": {
            "sustained_min_per_s": _target(
                TARGET_SUSTAINED_PER_S, best, best >= TARGET_SUSTAINED_PER_S
            ),
            "latency_p99_max_ms": _target(
                TARGET_LATENCY_P99_MS, latency["p99_ms"], latency["p99_ms"] < TARGET_LATENCY_P99_MS
            ),
            "refusal_p99_max_ms": _target(
                TARGET_REFUSAL_P99_MS,
                surge["refusal_p99_ms"],
                surge["refused"] > 0 and surge["refusal_p99_ms"] < TARGET_REFUSAL_P99_MS,
            ),
            "lost": _target(0, surge["lost"], surge["lost"] == 0),
            "duplicate_serials": _target(
                0, surge["duplicate_serials"], surge["duplicate_serials"] == 0
            ),
        },
        "baseline": {
            "rabbitmq_confirmed_publishes_per_s": round(publish_rate, 1),
            "celery_noop_tasks_per_s": round(celery_rate, 1),
            "ours_vs_rabbitmq_confirmed_publish": round(best / publish_rate, 3),
            "ours_vs_celery_noop": round(best / celery_rate, 3),
            "rabbitmq": "py-amqp, one connection, persistent 256 B messages to a durable quorum "
            "queue, each publish waits for its confirm",
            "celery": f"Celery no-op task, {plan.celery_tasks} sent on one connection, one worker "
            "with 2 prefork processes, no result backend, default acks and prefetch",
            "engine_floor_ms_per_document": round(floor_ms, 2),
            "ours_cpu_per_stamp_vs_engine_floor": round(cpu_per_stamp["total"] / floor_ms, 1),
            "engine_floor": "prepare + sign_digest + embed_signature of jpeg.pdf in one "
            "process, median, the test key loaded once",
        },
        "host_reference": host,
        "profile_cpu_percent_of_one_core": profile,
        "queued_by_stage": stages,
        "postgresql_sessions_opened_per_s": sessions,
        "details": details,
        "method": (
            f"closed loop of {plan.closed_clients} documents (submit, DONE, download every "
            f"document) for {plan.sustained_s:g} s after {plan.warmup_s:g} s warm-up; open loop "
            f"at fixed rates, at most {plan.open_max_inflight} submissions in flight; latency = "
            "client send to DONE commit (jobs.updated_at); backlog high water "
            f"{plan.high_water} and {plan.max_wait_ms} ms of work; {plan.resellers} resellers; "
            "document jpeg.pdf "
            f"({DOCUMENT.stat().st_size} B, 1 page)"
        ),
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


NOT_THE_RUN = ("rest of the machine (not this run)", "machine total")


def _cpu_ms_per_stamp(cpu_percent: dict[str, float], stamps_per_s: float) -> dict[str, Any]:
    """CPU milliseconds per stamp, per process of the run and in total, from the share of one
    core each process used in a sustained phase and the stamps per second it delivered."""
    per_process = {
        name: round(percent * 10 / max(stamps_per_s, 1e-9), 2)
        for name, percent in cpu_percent.items()
        if name not in NOT_THE_RUN
    }
    return {
        "total": round(sum(per_process.values()), 2),
        "per_process": per_process,
        "phase": "sustained_workers_2",
    }


def _engine_floor_ms(quick: bool) -> float:
    """The in-process floor: what the PDF and signature work of one stamp costs, median ms."""
    from bench.engine import _ours, _time
    from meterai_quota import generate_serial
    from meterai_signing.cms import load_identity
    from meterai_signing.pki import generate_test_pki
    from meterai_stamping.domain.jobs import verify_url
    from meterai_stamping.engine import Seal

    serial = generate_serial()
    seal = Seal(serial=serial, verify_url=verify_url("https://verify.meterai.local/v", serial))
    with tempfile.TemporaryDirectory(prefix="meterai-bench-floor-") as directory:
        pki = generate_test_pki(Path(directory))
        stamp = _ours(load_identity(pki.signer_key, pki.chain), seal)
        runs = {"warmup": 1, "min_runs": 3, "max_runs": 3, "budget_s": 0.0} if quick else {}
        median_ms, _ = _time(
            stamp,
            DOCUMENT.read_bytes(),
            **({"warmup": 5, "min_runs": 20, "max_runs": 300, "budget_s": 2.0} | runs),
        )
    return median_ms


def _json_safe(value: Any) -> Any:
    """NaN (a percentile of nothing, e.g. no refusals) becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _target(target: float, value: float, met: bool) -> dict[str, Any]:
    return {"target": target, "value": value, "met": met}


def _print(results: dict[str, Any]) -> None:
    targets = results["targets"]

    def verdict(key: str) -> str:
        return "target met" if targets[key]["met"] else "target NOT met"

    final_states = results["details"]["surge"]["accepted_by_final_state"]
    failed = sum(n for state, n in final_states.items() if state in ("FAILED", "DEAD_LETTERED"))
    sustained, latency, surge = (
        results["sustained"],
        results["latency_at_150_per_s"],
        results["surge"],
    )
    baseline = results["baseline"]
    print()
    print("e2e: gRPC submit -> RabbitMQ -> signing workers -> stamped PDF -> download (PostgreSQL)")
    print(f"{'sustained, 1 signing worker':<34} {sustained['workers_1_per_s']:>8.1f} stamps/s")
    print(
        f"{'sustained, 2 signing workers':<34} {sustained['workers_2_per_s']:>8.1f} stamps/s"
        f"   (>= {TARGET_SUSTAINED_PER_S:g}: {verdict('sustained_min_per_s')})"
    )
    print(
        f"{'latency at 150/s offered':<34} p50 {latency['p50_ms']:.0f} ms, p95 "
        f"{latency['p95_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms"
        f"   (p99 < {TARGET_LATENCY_P99_MS:g} ms: {verdict('latency_p99_max_ms')})"
    )
    at_150 = results["details"]["latency_at_150_per_s"]
    print(
        f"{'':<34} of {at_150['offered_per_s']:.0f}/s offered, {at_150['accepted']} accepted, "
        f"{sum(at_150['not_accepted'].values())} not ({at_150['not_accepted'] or 'none'})"
    )
    print(
        f"{'surge':<34} offered {surge['offered_per_s']:.0f}/s: accepted {surge['accepted']}, "
        f"refused {surge['refused']}, refusal p99 {surge['refusal_p99_ms']:.1f} ms"
        f"   (< {TARGET_REFUSAL_P99_MS:g} ms: {verdict('refusal_p99_max_ms')})"
    )
    print(
        f"{'':<34} drain {surge['drain_s']:.1f} s, lost {surge['lost']} ({verdict('lost')}),"
        f" failed and refunded {failed}, duplicate serials {surge['duplicate_serials']} "
        f"({verdict('duplicate_serials')})"
    )
    more = results["details"]["surge"]
    print(
        f"{'':<34} refusals with a pushback trailer {more['refused_with_pushback_trailer']}, "
        f"without {more['refused_without_trailer']}; refusal p50 {more['refusal_p50_ms']:.1f} ms;"
        f" other errors {more['other_errors'] or 'none'}"
    )
    print(
        "baseline RabbitMQ confirmed publishes: "
        f"{baseline['rabbitmq_confirmed_publishes_per_s']:,.0f}/s"
        f" -> ours/baseline {baseline['ours_vs_rabbitmq_confirmed_publish']:.3f}"
    )
    cpu = results["cpu_ms_per_stamp"]
    heaviest = sorted(cpu["per_process"].items(), key=lambda item: -item[1])[:6]
    print(
        f"CPU per stamp (2 workers)          {cpu['total']:.1f} ms: "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in heaviest)
    )
    print(f"accepted at 150/s offered          {results['accepted_ratio_at_150_per_s']:.1%}")
    print(
        f"in-process floor (prepare+sign+embed) {baseline['engine_floor_ms_per_document']:.2f} ms"
        f" -> ours/floor {baseline['ours_cpu_per_stamp_vs_engine_floor']:.1f}x"
    )
    print(
        "baseline Celery no-op tasks:           "
        f"{baseline['celery_noop_tasks_per_s']:,.0f}/s"
        f" -> ours/baseline {baseline['ours_vs_celery_noop']:.3f}"
    )
    host = results["host_reference"]
    print(
        f"host speed, idle, before the platform: 1M-iteration Python loop "
        f"{host['python_loop_1m_ms']:.0f} ms, SHA-256 of 9 MB {host['sha256_9mb_ms']:.1f} ms"
    )
    profile = results["profile_cpu_percent_of_one_core"]
    phases = list(profile)
    groups = sorted(
        {g for shares in profile.values() for g in shares},
        key=lambda g: (g == "machine total", -profile[phases[1]].get(g, 0.0)),
    )
    print()
    print("CPU, % of one core (2 cores = 200 %):")
    print(f"{'process':<38}" + "".join(f"{p.replace('_per_s', ''):>24}" for p in phases))
    for group in groups:
        print(f"{group:<38}" + "".join(f"{profile[p].get(group, 0.0):>24.1f}" for p in phases))
    stages = results["queued_by_stage"]
    print()
    print("documents queued in front of each stage, mean / max over the phase:")
    print(f"{'stage':<38}" + "".join(f"{p.replace('_per_s', ''):>24}" for p in phases))
    for stage in StageSampler.STAGES:
        cells = (f"{stages[p][stage]['mean']:.0f} / {stages[p][stage]['max']:.0f}" for p in phases)
        print(f"{stage:<38}" + "".join(f"{cell:>24}" for cell in cells))
    opened = results["postgresql_sessions_opened_per_s"]
    print(
        f"{'new PostgreSQL sessions per second':<38}"
        + "".join(f"{opened[p]:>24.1f}" for p in phases)
    )
    print(f"load average before the run: {results['load_average_1m_before']}")
    if results["details"]["postgresql_restarted_during_run"]:
        print("WARNING: PostgreSQL restarted during the run (other work on this machine); the")
        print("figures of the phases it interrupted are not the platform's.")


def main(argv: list[str] | None = None) -> None:
    """Run the end-to-end benchmark, print the table and write ``bench/results/e2e.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short phases and a 15 s surge, no JSON: a check that the bench runs",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="every channel in plaintext, to price TLS against the same run; results go to "
        "bench/results/e2e-insecure.json",
    )
    args = parser.parse_args(argv)
    # Run as a script, this file's folder is on sys.path instead of the repository root that
    # makes ``tests.support`` (the platform launcher) and ``bench`` importable.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))

    plan = Plan.quick() if args.quick else Plan()
    results = run(replace(plan, insecure=args.insecure))
    _print(results)
    if args.quick:
        print("quick run: short phases, figures not to quote; results not written")
        return
    path = RESULTS.with_name("e2e-insecure.json") if args.insecure else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(results), indent=2) + "\n")
    print(f"results in {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
