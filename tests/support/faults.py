"""Fault injection and end-state checks for the e2e fault tests.

The faults are the ones production sees: a killed or stopped worker, a broker that restarts or
raises a memory alarm, a database that restarts without a clean shutdown, a server told to stop.
Each injector restores what it broke in a ``finally`` and waits until the dependency accepts
connections again, so a failing test never leaves RabbitMQ or PostgreSQL down for the next one.

The checks (:func:`assert_settled`) read the end state only through the platform's public
surfaces (gRPC, the ``meterai`` CLI) plus one read-only query on the outbox, so they judge the
product the way an operator would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
import sqlalchemy as sa

from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai.verify.v1 import verify_pb2, verify_pb2_grpc
from meterai.webhooks.v1 import webhooks_pb2_grpc
from tests.support.brokers import rabbitmqctl
from tests.support.channels import platform_channel
from tests.support.corpus import CORPUS
from tests.support.databases import POSTGRES_ADMIN_URL, migrated_postgres_database
from tests.support.launch import DistributedPlatform

__all__ = [
    "DOCUMENT",
    "TERMINAL",
    "Batch",
    "Outcome",
    "Settled",
    "StampingClient",
    "Tenant",
    "add_worker_without_reject_on_worker_lost",
    "assert_settled",
    "broker_stopped",
    "create_operator",
    "fresh_database",
    "fresh_vhost",
    "in_background",
    "jobs_locked",
    "memory_alarm",
    "outbox_unpublished",
    "postgres_accepts",
    "postgres_down",
    "process_children",
    "provision_tenant",
    "queue_depths",
    "respawn",
    "restart_postgres",
    "signal_group",
    "signature_checks_waiting",
    "submit_batch",
    "unacknowledged_by",
    "vhost_of",
    "wait_for",
]

DOCUMENT = (CORPUS / "minimal-document.pdf").read_bytes()
"""One A4 page, 17 KB: cheap to prepare, so a batch measures the platform, not pypdf."""
RECT = stamping_pb2.Rect(x0=400, y0=50, x1=520, y1=170)

TERMINAL = frozenset(
    {
        stamping_pb2.JOB_STATE_DONE,
        stamping_pb2.JOB_STATE_FAILED,
        stamping_pb2.JOB_STATE_DEAD_LETTERED,
    }
)
T = TypeVar("T")
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def wait_for(
    what: str, condition: Callable[[], object], timeout: float, every: float = 0.2
) -> None:
    """Poll ``condition`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as error:  # a dependency being restarted answers with errors
            last_error = error
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last_error!r})")


# -- private databases and vhosts ------------------------------------------------------------
@contextmanager
def fresh_database() -> Iterator[str]:
    """A migrated PostgreSQL database of our own, dropped afterwards.

    Fault tests count every job, outbox row and serial in the database, so each gets an empty
    one rather than the session's shared database.
    """
    with migrated_postgres_database(
        "meterai_fault",
        before_drop=lambda: wait_for("PostgreSQL to accept connections", postgres_accepts, 60),
    ) as url:
        yield url


@contextmanager
def fresh_vhost() -> Iterator[str]:
    """An AMQP URL on a virtual host of our own, so queue depths are this test's alone."""
    vhost = f"meterai-fault-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        wait_for("RabbitMQ to accept connections", _rabbitmq_accepts, 60)
        rabbitmqctl("delete_vhost", vhost)


def in_background(submit: Callable[[], Batch]) -> tuple[threading.Thread, dict[str, Batch]]:
    """Run ``submit`` on a daemon thread, so a fault can strike while it is under way; the
    batch is in ``result["batch"]`` once the thread is joined."""
    result: dict[str, Batch] = {}

    def run() -> None:
        result["batch"] = submit()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def vhost_of(amqp_url: str) -> str:
    return amqp_url.rsplit("/", 1)[1]


def queue_depths(
    vhost: str, ctl: Callable[..., str] = rabbitmqctl
) -> dict[str, tuple[int, int, int]]:
    """``{queue: (ready, unacknowledged, consumers)}`` as the broker reports them now.

    :param ctl: runs ``rabbitmqctl`` with the arguments given: the shared node's by default,
        a test's own node's with ``functools.partial(cluster.ctl, node)``.
    """
    out = ctl(
        "-q",
        "list_queues",
        "-p",
        vhost,
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "--formatter",
        "json",
    )
    return {
        row["name"]: (
            int(row["messages_ready"] or 0),
            int(row["messages_unacknowledged"] or 0),
            int(row["consumers"] or 0),
        )
        for row in json.loads(out or "[]")
    }


def unacknowledged_by(vhost: str) -> list[int]:
    """OS pids of the processes whose AMQP connection holds unacknowledged messages on
    ``vhost``: the broker names the connection, its client port names the process."""
    channels = json.loads(
        rabbitmqctl(
            "-q",
            "list_channels",
            "-p",
            vhost,
            "connection",
            "messages_unacknowledged",
            "--formatter",
            "json",
        )
        or "[]"
    )
    connections = json.loads(
        rabbitmqctl(
            "-q", "list_connections", "-p", vhost, "pid", "peer_port", "--formatter", "json"
        )
        or "[]"
    )
    ports = {row["pid"]: row["peer_port"] for row in connections}
    pids: list[int] = []
    for channel in channels:
        if int(channel["messages_unacknowledged"] or 0) and channel["connection"] in ports:
            sockets = subprocess.run(
                [_tool("ss"), "-Htnp", f"sport = :{ports[channel['connection']]}"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            pids += [int(pid) for pid in re.findall(r"pid=(\d+)", sockets)]
    return pids


# -- reseller and gRPC client ----------------------------------------------------------------
@dataclass(frozen=True)
class Tenant:
    api_key: str
    purchased: int


def create_operator(platform: DistributedPlatform) -> str:
    """An operator key (confirms payments), made with ``meterai admin create-reseller``."""
    operator = platform.cli("admin", "create-reseller", "Fault Ops", "--operator", "--json")
    assert operator.code == 0, operator.stderr
    return str(operator.json()["api_key"])


def provision_tenant(
    platform: DistributedPlatform, units: int, operator_key: str, name: str = "Fault Reseller"
) -> Tenant:
    """A new reseller with ``units`` of paid quota: created, ordered and the payment confirmed
    through the CLI, as an operator and a reseller would."""
    # Reseller names are unique; the session's PostgreSQL database outlives one platform.
    reseller = platform.cli("admin", "create-reseller", f"{name} {uuid.uuid4().hex[:8]}", "--json")
    assert reseller.code == 0, reseller.stderr
    api_key = str(reseller.json()["api_key"])
    bought = platform.cli("quota", "buy", str(units), "--json", api_key=api_key)
    assert bought.code == 0, bought.stderr
    confirmed = platform.cli(
        "quota",
        "confirm",
        str(bought.json()["order_id"]),
        "--reference",
        f"pay-{uuid.uuid4().hex[:12]}",
        "--amount",
        str(units * 10_000),
        "--json",
        api_key=operator_key,
    )
    assert confirmed.code == 0, confirmed.stderr
    return Tenant(api_key, units)


def respawn(platform: DistributedPlatform, service: str) -> None:
    """Start ``meterai serve SERVICE`` again after it was stopped, on the same port."""
    assert platform.processes[service].poll() is not None, f"{service} is still running"
    platform._spawn(service, "serve", service)


class StampingClient:
    """The reseller's view over gRPC: submit, poll, list, balance, verify.

    No client-side retry policy: the tests want to see each status the server answers with.
    """

    def __init__(
        self, platform: DistributedPlatform, api_key: str, *, stamping_port: int | None = None
    ) -> None:
        """:param stamping_port: a stamping service other than the platform's first."""
        base = platform.base_port
        options = [("grpc.max_send_message_length", 25 * 1024 * 1024), ("grpc.enable_retries", 0)]
        ports = (base, stamping_port or base + 1, base + 3)
        self._channels = [platform_channel(platform.home, port, options=options) for port in ports]
        quota, stamping, verify = self._channels
        self.quota = quota_pb2_grpc.QuotaServiceStub(quota)
        self.stamping = stamping_pb2_grpc.StampingServiceStub(stamping)
        self.verify = verify_pb2_grpc.VerificationServiceStub(verify)
        self.webhooks = webhooks_pb2_grpc.WebhookServiceStub(quota)
        self.metadata = (("x-api-key", api_key),)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def submit(
        self, key: str, *, pdf: bytes = DOCUMENT, timeout: float = 10, number: str = ""
    ) -> stamping_pb2.Job:
        return self.stamping.SubmitDocument(
            stamping_pb2.SubmitDocumentRequest(
                pdf=pdf,
                placement=stamping_pb2.Placement(page=1, rect=RECT),
                metadata=stamping_pb2.DocumentMetadata(
                    document_type="Surat Lamaran", document_number=number or key[:100]
                ),
                idempotency_key=key,
                filename=f"{key[:60]}.pdf",
            ),
            metadata=self.metadata,
            timeout=timeout,
        )

    def get(self, job_id: str, timeout: float = 5) -> stamping_pb2.Job:
        return self.stamping.GetJob(
            stamping_pb2.GetJobRequest(job_id=job_id), metadata=self.metadata, timeout=timeout
        )

    def all_jobs(self) -> list[stamping_pb2.Job]:
        return _retrying(self._all_jobs)

    def _all_jobs(self) -> list[stamping_pb2.Job]:
        jobs: list[stamping_pb2.Job] = []
        token = ""
        while True:
            page = self.stamping.ListJobs(
                stamping_pb2.ListJobsRequest(page_size=100, page_token=token),
                metadata=self.metadata,
                timeout=10,
            )
            jobs.extend(page.jobs)
            token = page.next_page_token
            if not token:
                return jobs

    def balance(self) -> quota_pb2.Balance:
        return _retrying(
            lambda: self.quota.GetBalance(
                quota_pb2.GetBalanceRequest(), metadata=self.metadata, timeout=10
            )
        )

    def serial_status(self, serial: str) -> int:
        # Serial lookups are rate-limited per client: wait out the pushback like any client.
        while True:
            try:
                answer = _retrying(
                    lambda: self.verify.VerifySerial(
                        verify_pb2.VerifySerialRequest(serial=serial), timeout=10
                    )
                )
                return int(answer.status)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                pushback = dict(error.trailing_metadata() or ()).get("grpc-retry-pushback-ms")
                time.sleep(int(pushback or 1000) / 1000)

    def wait_terminal(self, job_ids: Iterable[str], timeout: float) -> dict[str, stamping_pb2.Job]:
        """Poll until every job is terminal; tolerates the server being briefly unreachable."""
        pending = set(job_ids)
        final: dict[str, stamping_pb2.Job] = {}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for job_id in sorted(pending):
                try:
                    job = self.get(job_id)
                except grpc.RpcError as error:
                    if error.code() in _TRANSIENT:
                        break
                    raise
                if job.state in TERMINAL:
                    final[job_id] = job
                    pending.discard(job_id)
            if pending:
                time.sleep(0.3)
        if pending:
            states = {}
            for job_id in sorted(pending)[:10]:
                try:
                    states[job_id] = stamping_pb2.JobState.Name(self.get(job_id).state)
                except grpc.RpcError as error:
                    states[job_id] = error.code().name
            raise AssertionError(
                f"{len(pending)} accepted jobs not terminal after {timeout:.0f}s: {states}"
            )
        return final


def _retrying(call: Callable[[], T], within_s: float = 30) -> T:
    """Run a read, retrying while the platform says it is briefly unavailable (a service
    reconnecting after a fault is allowed to say so; it is not allowed to say anything else)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() not in _TRANSIENT or time.monotonic() > deadline:
                raise
        time.sleep(0.3)


# -- batches -----------------------------------------------------------------------------------
@dataclass
class Outcome:
    key: str
    job: stamping_pb2.Job | None
    code: grpc.StatusCode | None
    elapsed: float
    details: str = ""


@dataclass
class Batch:
    """What the server answered to each submission of a batch."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def accepted(self) -> dict[str, stamping_pb2.Job]:
        return {o.job.job_id: o.job for o in self.outcomes if o.job is not None}

    @property
    def refused(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.job is None]

    def codes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            name = "OK" if outcome.code is None else outcome.code.name
            counts[name] = counts.get(name, 0) + 1
        return counts


def submit_batch(
    client: StampingClient,
    count: int,
    *,
    prefix: str | None = None,
    threads: int = 4,
    timeout: float = 10,
    pace_s: float = 0.0,
    stop: threading.Event | None = None,
) -> Batch:
    """Submit ``count`` distinct documents concurrently, recording each answer and its latency.

    :param pace_s: pause between submissions on each thread, to spread a batch over a fault.
    :param stop: set to end the batch early (remaining submissions are not sent).
    """
    prefix = prefix or uuid.uuid4().hex[:8]
    batch = Batch()
    lock = threading.Lock()

    def one(index: int) -> None:
        if stop is not None and stop.is_set():
            return
        key = f"{prefix}-{index:04d}"
        started = time.monotonic()
        try:
            job = client.submit(key, timeout=timeout)
            outcome = Outcome(key, job, None, time.monotonic() - started)
        except grpc.RpcError as error:
            outcome = Outcome(key, None, error.code(), time.monotonic() - started, error.details())
        with lock:
            batch.outcomes.append(outcome)
        if pace_s:
            time.sleep(pace_s)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return batch


# -- the end state -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Settled:
    jobs: dict[str, stamping_pb2.Job]
    """Every job of the tenant, terminal, by id."""
    serials: dict[str, str]
    """Serial of each DONE job, by job id."""

    def in_state(self, state: int) -> list[stamping_pb2.Job]:
        return [job for job in self.jobs.values() if job.state == state]


def assert_settled(
    platform: DistributedPlatform,
    client: StampingClient,
    tenant: Tenant,
    acknowledged: Iterable[str],
    *,
    timeout: float = 45,
    all_done: bool = True,
) -> Settled:
    """Wait until every job is terminal, then check the guarantees that must survive any fault.

    * every acknowledged job exists and, like every other job of the tenant (including those
      whose acknowledgement the client never saw), ends DONE, or FAILED / DEAD_LETTERED with its
      unit refunded; with ``all_done`` every job must be DONE;
    * each DONE job has its own serial, and the verification service reports it ISSUED; the
      serial of a job that did not finish is never ISSUED;
    * purchased = available + held + consumed, nothing is still held, consumed = DONE jobs;
    * every outbox row was published and ``meterai admin reconcile`` finds the ledger consistent.
    """
    acknowledged = set(acknowledged)
    listed = {job.job_id for job in client.all_jobs()}
    missing = acknowledged - listed
    assert not missing, f"acknowledged jobs the platform does not know: {sorted(missing)[:5]}"
    jobs = client.wait_terminal(listed, timeout)
    done = [job for job in jobs.values() if job.state == stamping_pb2.JOB_STATE_DONE]
    unfinished = [job for job in jobs.values() if job.state != stamping_pb2.JOB_STATE_DONE]
    for job in unfinished:
        assert job.refunded, f"job {job.job_id} ended {job.state} without a refund"
    if all_done:
        assert not unfinished, [
            (j.job_id, stamping_pb2.JobState.Name(j.state), j.failure_reason) for j in unfinished
        ]
    serials = {job.job_id: job.serial for job in done}
    assert all(serials.values()), "a DONE job without a serial"
    assert len(set(serials.values())) == len(serials), "a serial was issued to two jobs"
    for serial in serials.values():
        assert client.serial_status(serial) == verify_pb2.SERIAL_STATUS_ISSUED, serial
    for job in unfinished:
        if job.serial:
            assert client.serial_status(job.serial) != verify_pb2.SERIAL_STATUS_ISSUED, job

    balance = client.balance()
    assert balance.purchased == tenant.purchased, balance
    assert balance.held == 0, balance
    assert balance.available + balance.held + balance.consumed == balance.purchased, balance
    assert balance.consumed == len(done), (balance, len(done))

    wait_for("the outbox to drain", lambda: _unpublished(platform) == 0, 30)
    reconciled = platform.cli("admin", "reconcile")
    assert reconciled.code == 0, reconciled.stdout + reconciled.stderr
    if serials:
        sample = next(iter(serials.values()))
        verified = platform.cli("verify", sample)
        assert verified.code == 0 and "ISSUED" in verified.stdout, verified.stdout
    return Settled(jobs, serials)


def outbox_unpublished(platform: DistributedPlatform) -> int:
    """Outbox rows of the platform's database not yet confirmed by the broker."""
    return _unpublished(platform)


def _unpublished(platform: DistributedPlatform) -> int:
    engine = sa.create_engine(
        sa.make_url(platform.env["DATABASE_URL"]).set(drivername="postgresql+psycopg"),
        poolclass=sa.NullPool,
    )
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(sa.text("SELECT count(*) FROM outbox WHERE published_at IS NULL")) or 0
            )
    finally:
        engine.dispose()


# -- faults ------------------------------------------------------------------------------------
def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def _rabbitmq_accepts() -> bool:
    if not _accepts(5672):
        return False
    status = subprocess.run(
        [_tool("rabbitmqctl"), "-q", "status"], capture_output=True, timeout=30, check=False
    )
    return status.returncode == 0


def postgres_accepts() -> bool:
    engine = sa.create_engine(POSTGRES_ADMIN_URL, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing"
    return path


@contextmanager
def broker_stopped() -> Iterator[None]:
    """RabbitMQ's application stopped (``rabbitmqctl stop_app``) for the body of the block;
    started again, and accepting connections, whatever happens inside."""
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        wait_for("RabbitMQ to accept connections", _rabbitmq_accepts, 60)


@contextmanager
def memory_alarm() -> Iterator[None]:
    """A memory alarm on the broker (watermark 0 blocks every publisher) for the block's body.

    The watermark goes back to the production 0.4 in a ``finally``: a test that dies here must
    not leave the broker refusing publishes for everyone after it.
    """
    rabbitmqctl("set_vm_memory_high_watermark", "0")
    try:
        yield
    finally:
        rabbitmqctl("set_vm_memory_high_watermark", "0.4")


def _pg_ctlcluster(action: str) -> None:
    result = subprocess.run(
        [
            _tool("pg_ctlcluster"),
            "--skip-systemctl-redirect",
            "15",
            "main",
            action,
            "-m",
            "immediate",
        ]
        if action != "start"
        else [_tool("pg_ctlcluster"), "--skip-systemctl-redirect", "15", "main", "start"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def restart_postgres() -> None:
    """``pg_ctlcluster ... restart -m immediate``: every backend dies mid-transaction and the
    server replays its WAL (crash recovery), as after a power cut; returns once it accepts
    connections again."""
    try:
        _pg_ctlcluster("restart")
    finally:
        wait_for("PostgreSQL to accept connections", postgres_accepts, 60)


@contextmanager
def postgres_down() -> Iterator[None]:
    """PostgreSQL crashed (``stop -m immediate``: no shutdown checkpoint, so the next start runs
    crash recovery) for the body of the block; started again, and accepting connections,
    whatever happens inside."""
    _pg_ctlcluster("stop")
    try:
        yield
    finally:
        _pg_ctlcluster("start")
        wait_for("PostgreSQL to accept connections", postgres_accepts, 60)


def process_children(pid: int) -> list[int]:
    """Direct children of ``pid`` (a Celery worker's pool processes)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def signal_group(platform: DistributedPlatform, name: str, sig: int) -> None:
    """Send ``sig`` to a process launched by ``platform`` and everything it forked."""
    os.killpg(platform.processes[name].pid, sig)


# -- the signing tier, held or changed from outside ---------------------------------------------
_WORKER_WITHOUT_REJECT_ON_WORKER_LOST = """
import sys
import meterai_signing.tasks as tasks
tasks._RETRIES["reject_on_worker_lost"] = False
from meterai_cli.main import main
sys.argv = ["meterai", "worker", "signing", "--concurrency", "1"]
main()
"""


def add_worker_without_reject_on_worker_lost(platform: DistributedPlatform, name: str) -> None:
    """A control signing worker: ``meterai worker signing --concurrency 1`` exactly, except that
    its tasks are registered with ``reject_on_worker_lost`` off (Celery's default), so a task
    whose pool process dies is acknowledged as failed instead of going back to the queue.

    Only a control run uses it, to show that a fault test fails without the setting it proves;
    the product has no switch for this (nor should it), so the launcher changes the task
    options before the worker registers its tasks, in its own process.
    """
    env = platform._env_of("signing-worker")
    fd = os.open(platform.home / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        platform.processes[name] = subprocess.Popen(
            [sys.executable, "-c", _WORKER_WITHOUT_REJECT_ON_WORKER_LOST],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextmanager
def jobs_locked(database_url: str) -> Iterator[None]:
    """The ``jobs`` table locked (``ACCESS EXCLUSIVE``) for the block's body, so every read of
    it waits: a signing worker that takes a task then waits inside it, in its check of the
    batch against the committed jobs (:func:`signature_checks_waiting` sees it), holding the
    batch for as long as the test needs.

    The platform's sessions give up on a lock after 2 s (``lock_timeout``,
    ``meterai_common.db``): whatever the test does to a held worker it does within that.
    """
    engine = sa.create_engine(_psycopg(database_url), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET lock_timeout = '10s'")
            conn.exec_driver_sql("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


def signature_checks_waiting(database_url: str) -> int:
    """Sessions waiting on a lock in the signing tier's check of a batch (its one read of the
    jobs a task names, ``meterai_signing.job_check``)."""
    engine = sa.create_engine(_psycopg(database_url), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()"
                        " AND query LIKE '%SELECT job_id, serial, digest FROM jobs%'"
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


def _psycopg(database_url: str) -> sa.URL:
    return sa.make_url(database_url).set(drivername="postgresql+psycopg")
