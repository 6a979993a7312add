"""Faults while the platform is busy: every accepted job still ends stamped once or refunded.

One distributed platform per module (every service its own process, Celery signing workers,
PostgreSQL and RabbitMQ on a database and a virtual host of their own); each test gets a new
reseller with paid quota, submits a batch through the public gRPC API, injects one fault, and
then checks the end state with :func:`~tests.support.faults.assert_settled`: every job terminal,
DONE or refunded, serials unique and verifiable, quota conserved, outbox drained and
``meterai admin reconcile`` clean. A fixture puts the platform back to its baseline (stamping
server up, one running signing worker) before each test, so one test's fault is not the next
test's starting point.

Test numbers are the fault list of the README's guarantees table; they are stable names.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meterai.stamping.v1 import stamping_pb2
from tests.support.channels import platform_channel
from tests.support.faults import (
    StampingClient,
    Tenant,
    assert_settled,
    broker_stopped,
    create_operator,
    fresh_database,
    fresh_vhost,
    in_background,
    memory_alarm,
    postgres_accepts,
    postgres_down,
    provision_tenant,
    queue_depths,
    respawn,
    signal_group,
    submit_batch,
    unacknowledged_by,
    vhost_of,
    wait_for,
)
from tests.support.launch import DistributedPlatform

# Restarts the PostgreSQL or RabbitMQ every other test shares: never beside another test.
pytestmark = pytest.mark.disrupts_shared_services

UNITS = 200
DELIVERY_LIMIT = 5
"""``x-delivery-limit`` of the signing queue (``meterai_common.messaging``)."""
SIGNING_QUEUE = "signing"
DONE = stamping_pb2.JOB_STATE_DONE


@dataclass
class Cluster:
    platform: DistributedPlatform
    vhost: str
    operator_key: str
    workers: int = 0

    def add_worker(self) -> str:
        self.workers += 1
        name = f"worker-{self.workers}"
        self.platform.add_worker(name)
        return name

    def running_workers(self) -> list[str]:
        return [
            name
            for name, process in self.platform.processes.items()
            if name.startswith("worker") and process.poll() is None
        ]


@dataclass
class World:
    platform: DistributedPlatform
    cluster: Cluster
    client: StampingClient
    tenant: Tenant
    vhost: str
    notes: list[str] = field(default_factory=list)

    def done(self) -> int:
        return sum(1 for job in self.client.all_jobs() if job.state == DONE)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with fresh_database() as database_url, fresh_vhost() as amqp_url:
        platform = DistributedPlatform(tmp_path_factory.mktemp("faults"))
        try:
            platform.start(database_url, amqp_url, workers=0)
            cluster = Cluster(platform, vhost_of(amqp_url), create_operator(platform))
            yield cluster
        finally:
            for process in platform.processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGCONT)
            platform.stop()


@pytest.fixture
def world(cluster: Cluster) -> Iterator[World]:
    """The module's platform at its baseline, and a new reseller with paid quota."""
    platform = cluster.platform
    for service in ("quota", "stamping", "signing", "verify"):
        if platform.processes[service].poll() is not None:
            respawn(platform, service)
    workers = cluster.running_workers()
    for name in workers:
        signal_group(platform, name, signal.SIGCONT)
    for extra in workers[1:]:
        platform.stop(extra)
    for name in [n for n in platform.processes if n.startswith("worker")]:
        if platform.processes[name].poll() is not None:
            del platform.processes[name]
    if not workers:
        cluster.add_worker()
    platform.wait_serving()
    wait_for(
        "one signing worker consuming",
        lambda: queue_depths(cluster.vhost).get(SIGNING_QUEUE, (0, 0, 0))[2] == 1,
        30,
    )
    wait_for("PostgreSQL to accept connections", postgres_accepts, 60)
    tenant = provision_tenant(platform, UNITS, cluster.operator_key, f"R-{uuid.uuid4().hex[:6]}")
    client = StampingClient(platform, tenant.api_key)
    try:
        yield World(platform, cluster, client, tenant, cluster.vhost)
    finally:
        client.close()


# -- 1 ---------------------------------------------------------------------------------------
def test_1_a_killed_worker_loses_no_job(world: World) -> None:
    """SIGKILL the only signing worker (main process and pool) mid-batch; a new worker finishes
    every job: 50 stamps, 50 distinct serials, 50 units consumed."""
    (victim,) = world.cluster.running_workers()
    thread, result = in_background(lambda: submit_batch(world.client, 50, threads=4))
    # Killed at the first stamp, polled often: the platform finishes 50 in about a second.
    wait_for("the first stamp", lambda: world.done() >= 1, 30, every=0.02)
    world.platform.stop(victim, signal.SIGKILL)
    thread.join(60)
    batch = result["batch"]
    assert batch.codes() == {"OK": 50}, batch.codes()
    assert world.done() < 50, "the worker was killed too late to test anything"
    world.cluster.add_worker()
    settled = assert_settled(world.platform, world.client, world.tenant, batch.accepted)
    assert len(settled.serials) == 50


def test_1b_a_killed_finishing_worker_loses_no_signed_document(world: World) -> None:
    """A finishing worker beside the stamping service is frozen holding signing answers, then
    killed: the answers go back to the queue and are finished elsewhere, each once."""
    platform = world.platform
    consumers = _events_queue(world)[2]
    platform.add_finisher("finisher-1", concurrency=2)
    finisher = platform.processes["finisher-1"]
    try:
        wait_for(
            "the finishing worker consuming",
            lambda: _events_queue(world)[2] == consumers + 2,
            30,
        )
        signal_group(platform, "finisher-1", signal.SIGSTOP)
        thread, result = in_background(lambda: submit_batch(world.client, 50, threads=4))
        wait_for(
            "answers held by the frozen finishing worker",
            lambda: finisher.pid in unacknowledged_by(world.vhost),
            60,
        )
        platform.stop("finisher-1", signal.SIGKILL)
        thread.join(60)
        batch = result["batch"]
        assert batch.codes() == {"OK": 50}, batch.codes()
        settled = assert_settled(platform, world.client, world.tenant, batch.accepted)
        assert len(settled.serials) == 50
        assert _events_queue(world)[:2] == (0, 0)  # nothing left ready or unacknowledged
    finally:
        if finisher.poll() is None:
            platform.stop("finisher-1", signal.SIGKILL)
        del platform.processes["finisher-1"]


def _events_queue(world: World) -> tuple[int, int, int]:
    """(ready, unacknowledged, consumers) of the queue of signing answers."""
    return queue_depths(world.vhost).get("stamping.events", (0, 0, 0))


def test_1c_a_worker_killed_holding_a_batch_has_each_document_stamped_once(world: World) -> None:
    """The only signing worker is frozen, 12 documents are submitted four at a time (the relay
    sends them as fewer tasks than documents), the worker is SIGKILLed holding one task, and a
    new worker takes over: the batch it held comes back, is split into one task per document,
    and every document is stamped once (12 serials, 12 units consumed, reconcile clean)."""
    platform = world.platform
    (victim,) = world.cluster.running_workers()
    signal_group(platform, victim, signal.SIGSTOP)
    try:
        batch = submit_batch(world.client, 12, threads=4)
        assert batch.codes() == {"OK": 12}, batch.codes()
        wait_for(
            "every sign request at the broker, one task held",
            lambda: (
                _queues_report(platform)["outbox"]["unpublished"] == 0 and _signing(world)[1] == 1
            ),
            30,
        )
        ready, held, _ = _signing(world)
        assert ready + held < 12, "every document went in a task of its own: no batch formed"
    finally:
        platform.stop(victim, signal.SIGKILL)
    world.cluster.add_worker()
    settled = assert_settled(platform, world.client, world.tenant, batch.accepted)
    assert len(settled.serials) == 12


# -- 3 ---------------------------------------------------------------------------------------
def test_3_broker_bounce_during_submissions_stamps_each_acknowledged_job_once(
    world: World,
) -> None:
    """``rabbitmqctl stop_app`` / ``start_app`` while submissions keep arriving.

    Submissions during the outage are answered in time (the job is durable in PostgreSQL; the
    outbox holds its task), consuming resumes within 30 s of the broker's return, and every
    acknowledged job is stamped exactly once.
    """
    deadline_s = 5.0
    stop = threading.Event()
    thread, result = in_background(
        lambda: submit_batch(
            world.client, 150, threads=3, timeout=deadline_s, pace_s=0.1, stop=stop
        )
    )
    wait_for("the first stamps", lambda: world.done() >= 10, 30)
    with broker_stopped():
        time.sleep(5)
    restarted = time.monotonic()
    done_at_restart = world.done()
    wait_for("a job stamped after the restart", lambda: world.done() > done_at_restart, 30)
    resumed_s = time.monotonic() - restarted
    thread.join(90)
    stop.set()
    batch = result["batch"]
    codes = batch.codes()
    assert set(codes) <= {"OK", "UNAVAILABLE"}, codes
    slow = [o for o in batch.outcomes if o.elapsed > deadline_s + 1]
    assert not slow, f"{len(slow)} calls hung past their deadline: {slow[:3]}"
    assert codes.get("OK", 0) >= 100, (codes, sorted({o.details for o in batch.refused}))
    assert resumed_s < 30
    settled = assert_settled(world.platform, world.client, world.tenant, batch.accepted)
    assert set(batch.accepted) <= set(settled.serials)


# -- 5 ---------------------------------------------------------------------------------------
def test_5_memory_alarm_keeps_the_api_answering_then_drains(world: World) -> None:
    """With the broker's memory watermark at 0 (every publisher blocked) for ~10 s, every call
    of the API answers within its deadline; once the watermark is back, everything drains."""
    deadline_s = 5.0
    before = submit_batch(world.client, 10, threads=2, timeout=deadline_s)
    assert before.codes() == {"OK": 10}, before.codes()
    with memory_alarm():
        alarm_started = time.monotonic()
        during = submit_batch(world.client, 20, threads=4, timeout=deadline_s, pace_s=0.2)
        started = time.monotonic()
        for job_id in list(during.accepted)[:5]:
            world.client.get(job_id, timeout=deadline_s)
        world.client.balance()
        reads_s = time.monotonic() - started
        time.sleep(max(0.0, 10 - (time.monotonic() - alarm_started)))
        stuck = world.client.all_jobs()
    codes = during.codes()
    assert set(codes) <= {"OK", "UNAVAILABLE", "RESOURCE_EXHAUSTED"}, codes
    assert codes.get("OK", 0) >= 1, codes
    assert max(o.elapsed for o in during.outcomes) < deadline_s, during.outcomes
    assert reads_s < deadline_s
    assert sum(1 for job in stuck if job.state == DONE) < 30, "the alarm blocked nothing"
    accepted = {**before.accepted, **during.accepted}
    assert_settled(world.platform, world.client, world.tenant, accepted, timeout=60)


def test_5b_a_stamping_service_without_finishers_refuses_while_the_outbox_cannot_drain(
    world: World,
) -> None:
    """A stamping service started with ``METERAI_STAMPING_FINISHERS=0`` publishes nothing
    itself, so it judges the broker by the age of the oldest unpublished outbox message. Under a
    memory alarm longer than the admission grace (5 s) it answers UNAVAILABLE within the call's
    deadline instead of growing an unbounded backlog; once the alarm clears, everything drains."""
    platform = world.platform
    deadline_s = 5.0
    port = platform.add_stamping(
        "stamping-answering", extra_env={"METERAI_STAMPING_FINISHERS": "0"}
    )
    client = StampingClient(platform, world.tenant.api_key, stamping_port=port)
    try:
        wait_for("the answering-only stamping service", lambda: _answers(client), 60)
        with memory_alarm():
            during = submit_batch(client, 60, threads=3, timeout=deadline_s, pace_s=0.5)
        codes = during.codes()
        assert set(codes) <= {"OK", "UNAVAILABLE"}, codes
        assert codes.get("OK", 0) >= 1, codes
        assert codes.get("UNAVAILABLE", 0) >= 1, f"the outage was never told: {codes}"
        assert max(o.elapsed for o in during.outcomes) < deadline_s, during.outcomes
        refusal = next(o for o in during.outcomes if o.code == grpc.StatusCode.UNAVAILABLE)
        assert "signing queue" in refusal.details, refusal.details
        assert_settled(platform, world.client, world.tenant, during.accepted, timeout=60)
        # Told once the outbox drained: the same service accepts again.
        after = submit_batch(client, 3, threads=1, timeout=deadline_s)
        assert after.codes() == {"OK": 3}, after.codes()
        assert_settled(platform, world.client, world.tenant, after.accepted, timeout=60)
    finally:
        client.close()
        platform.stop("stamping-answering")
        del platform.processes["stamping-answering"]


def _answers(client: StampingClient) -> bool:
    try:
        client.balance()
        client.stamping.ListJobs(
            stamping_pb2.ListJobsRequest(page_size=1), metadata=client.metadata, timeout=2
        )
    except grpc.RpcError:
        return False
    return True


# -- 9 ---------------------------------------------------------------------------------------
class TransientFaultFailedJobs(AssertionError):
    """Jobs that a short outage should have delayed ended refunded instead of stamped."""


def test_9_postgres_crash_restart_mid_batch_debits_once_and_finishes(world: World) -> None:
    """PostgreSQL crashes (``pg_ctlcluster stop -m immediate``, down ~6 s, then crash recovery)
    while the signing tier answers a small backlog and new submissions keep arriving.

    Calls that fail during the outage fail cleanly (UNAVAILABLE, nothing charged); retrying them
    with the same idempotency key makes one job each; no unit is debited twice or left held; and
    every job finishes DONE: signed answers that arrive while the database is down wait for it.
    """
    platform = world.platform
    (worker,) = world.cluster.running_workers()
    signal_group(platform, worker, signal.SIGSTOP)
    try:
        backlog = submit_batch(world.client, 4, prefix="pg-a", threads=2)
        assert backlog.codes() == {"OK": 4}, backlog.codes()
        wait_for(
            "a signing backlog (every request at the broker, in one or more batch tasks)",
            lambda: (
                _queues_report(platform)["outbox"]["unpublished"] == 0
                and sum(_signing(world)[:2]) >= 1
            ),
            30,
        )
        stop = threading.Event()
        thread, result = in_background(
            lambda: submit_batch(
                world.client, 30, prefix="pg-b", threads=3, timeout=10, pace_s=0.2, stop=stop
            )
        )
        time.sleep(1)
        with postgres_down():
            signal_group(platform, worker, signal.SIGCONT)
            time.sleep(6)
    finally:
        signal_group(platform, worker, signal.SIGCONT)
    thread.join(90)
    stop.set()
    during = result["batch"]
    codes = during.codes()
    retried: dict[str, stamping_pb2.Job] = {}
    for outcome in during.refused:
        job = _submit_until_accepted(world.client, outcome.key)
        retried[job.job_id] = job
    settled = assert_settled(
        platform,
        world.client,
        world.tenant,
        {**backlog.accepted, **during.accepted, **retried},
        timeout=60,
        all_done=False,
    )
    assert len(settled.jobs) == 34, (len(settled.jobs), codes)
    assert set(codes) <= {"OK", "UNAVAILABLE"}, (
        f"submissions during a database outage must fail as UNAVAILABLE (retryable), got "
        f"{codes}: {[o.details for o in during.refused][:3]}"
    )
    unfinished = {
        job.job_id: (stamping_pb2.JobState.Name(job.state), job.failure_reason)
        for job in settled.jobs.values()
        if job.state != DONE
    }
    if unfinished:
        raise TransientFaultFailedJobs(f"{len(unfinished)} of 34 jobs not stamped: {unfinished}")


def _submit_until_accepted(client: StampingClient, key: str) -> stamping_pb2.Job:
    deadline = time.monotonic() + 30
    while True:
        try:
            return client.submit(key, timeout=10)
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# -- 10 --------------------------------------------------------------------------------------
def test_10_concurrent_submits_with_one_key_make_one_job(world: World) -> None:
    """Twenty concurrent submits with one idempotency key: one job, one debit; each caller
    gets that job (or ABORTED while the first is in progress). The same key with another
    document is INVALID_ARGUMENT."""
    key = f"race-{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(20)
    answers: list[stamping_pb2.Job | grpc.StatusCode] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        try:
            answer: stamping_pb2.Job | grpc.StatusCode = world.client.submit(key, timeout=30)
        except grpc.RpcError as error:
            answer = error.code()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=race) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    jobs = [a for a in answers if isinstance(a, stamping_pb2.Job)]
    others = [a for a in answers if not isinstance(a, stamping_pb2.Job)]
    assert len(answers) == 20
    assert jobs and all(code == grpc.StatusCode.ABORTED for code in others), others
    assert len({job.job_id for job in jobs}) == 1, {job.job_id for job in jobs}
    assert len({job.serial for job in jobs}) == 1

    with pytest.raises(grpc.RpcError) as conflict:
        world.client.submit(key, number="a different document number")
    assert conflict.value.code() == grpc.StatusCode.INVALID_ARGUMENT, conflict.value.details()
    settled = assert_settled(world.platform, world.client, world.tenant, {jobs[0].job_id})
    assert len(settled.jobs) == 1
    assert world.client.balance().consumed == 1


# -- 16 --------------------------------------------------------------------------------------
def test_16_sigterm_drains_the_stamping_server(world: World) -> None:
    """SIGTERM to the stamping server during ~50 uploads: health turns NOT_SERVING before the
    server goes away, RPCs in flight complete, new ones are refused as UNAVAILABLE (never a
    half-done job); restarted, the server finishes everything and retries make one job each.
    Calls shed as RESOURCE_EXHAUSTED while the workers are busy are retried the same way."""
    platform = world.platform
    health_channel = platform_channel(platform.home, platform.base_port + 1)
    statuses: list[int] = []
    watching = threading.Event()

    def watch_health() -> None:
        try:
            for response in health_pb2_grpc.HealthStub(health_channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=60
            ):
                statuses.append(response.status)
                watching.set()
        except grpc.RpcError:
            pass

    watcher = threading.Thread(target=watch_health, daemon=True)
    watcher.start()
    assert watching.wait(10), "the health watch never answered"

    timeline: dict[str, tuple[float, float, bool]] = {}
    lock = threading.Lock()
    original_submit = world.client.submit

    def timed_submit(key: str, **kwargs: object) -> stamping_pb2.Job:
        started = time.monotonic()
        ok = False
        try:
            job = original_submit(key, **kwargs)  # type: ignore[arg-type]
            ok = True
            return job
        finally:
            with lock:
                timeline[key] = (started, time.monotonic(), ok)

    world.client.submit = timed_submit  # type: ignore[method-assign]
    thread, result = in_background(
        lambda: submit_batch(world.client, 50, prefix="term", threads=8, timeout=20, pace_s=0.05)
    )
    wait_for("the first uploads", lambda: len(timeline) >= 10, 30, every=0.01)
    sigterm_at = time.monotonic()
    signal_group(platform, "stamping", signal.SIGTERM)
    thread.join(90)
    world.client.submit = original_submit  # type: ignore[method-assign]
    platform.processes["stamping"].wait(30)
    watcher.join(10)
    health_channel.close()

    batch = result["batch"]
    codes = batch.codes()
    assert set(codes) <= {"OK", "UNAVAILABLE", "RESOURCE_EXHAUSTED"}, codes
    # Eight uploads at once keep the server's workers busy: a "later" from load shedding is
    # allowed (retried below like the shutdown's UNAVAILABLE), never an error that charged.
    shed = [o.details for o in batch.outcomes if o.code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert all("nothing was charged" in details for details in shed), shed
    assert statuses[-1] == health_pb2.HealthCheckResponse.NOT_SERVING, statuses
    in_flight = [key for key, (start, end, _ok) in timeline.items() if start < sigterm_at < end]
    assert in_flight, "no upload was in flight at SIGTERM"
    assert all(timeline[key][2] for key in in_flight), {k: timeline[k] for k in in_flight}
    assert platform.processes["stamping"].returncode == 0, platform.log("stamping")[-2000:]

    respawn(platform, "stamping")
    platform.wait_serving()
    retried = {}
    for outcome in batch.refused:
        job = _submit_until_accepted(world.client, outcome.key)
        retried[job.job_id] = job
    settled = assert_settled(platform, world.client, world.tenant, {**batch.accepted, **retried})
    assert len(settled.jobs) == 50


# -- 7 (needs dead-letter handling) ----------------------------------------------------------
def test_7_poison_job_is_dead_lettered_and_refunded(world: World) -> None:
    """A job that crashes every worker that takes it is dead-lettered after the signing
    queue's delivery limit, refunded, and listed by ``meterai admin dead-letters``; jobs
    before and after it are stamped; once the cause is gone, ``--redrive`` stamps it as a new
    job.

    The crash is injected from outside (no product hook): each worker that holds the poison
    task is SIGKILLed, main process and pool together, as the kernel's OOM killer would on a
    document that blows up the signer. To make "holds" deterministic, seven workers register as
    consumers and are then frozen (SIGSTOP) before the task exists, so the broker's delivery is
    the only thing that happens to the one that gets it; the broker names the connection that
    holds the task unacknowledged and the connection's port names the process to kill.
    RabbitMQ returns the task to the queue, counts the delivery and gives it to another frozen
    worker, until the delivery limit dead-letters it. The signing queue is otherwise empty while
    this runs, and the loop finishes well within the 60 s after which the stamping service
    re-drives a job it got no answer for.
    """
    platform, cluster = world.platform, world.cluster
    before = submit_batch(world.client, 10, prefix="before", threads=2)
    assert before.codes() == {"OK": 10}
    wait_for("the first batch", lambda: world.done() == 10, 30)
    for name in cluster.running_workers():
        platform.stop(name)
    wait_for("no signing consumer", lambda: _signing(world)[2] == 0, 30)

    frozen = [cluster.add_worker() for _ in range(DELIVERY_LIMIT + 2)]
    crashes = 0
    try:
        wait_for("every worker consuming", lambda: _signing(world)[2] == len(frozen), 90, every=0.5)
        for name in frozen:
            signal_group(platform, name, signal.SIGSTOP)
        poison = world.client.submit(f"poison-{uuid.uuid4().hex[:8]}")
        wait_for("the poison task delivered", lambda: _signing(world)[:2] == (0, 1), 30)
        by_pid = {platform.processes[name].pid: name for name in frozen}
        while _signing(world)[:2] == (0, 1):
            assert crashes <= DELIVERY_LIMIT, "the delivery limit never dead-lettered the task"
            (holder,) = [by_pid[pid] for pid in unacknowledged_by(world.vhost) if pid in by_pid]
            platform.stop(holder, signal.SIGKILL)
            crashes += 1
            consumers = len(frozen) - crashes
            wait_for(
                "the task delivered to another worker, or dead-lettered",
                lambda n=consumers: _signing(world) in ((0, 1, n), (0, 0, n)),
                30,
            )
    finally:
        for name in frozen:
            if platform.processes[name].poll() is None:
                platform.stop(name, signal.SIGKILL)
    assert crashes == DELIVERY_LIMIT + 1, crashes

    cluster.add_worker()
    after = submit_batch(world.client, 10, prefix="after", threads=2)
    assert after.codes() == {"OK": 10}
    (final,) = world.client.wait_terminal([poison.job_id], 30).values()
    assert final.state == stamping_pb2.JOB_STATE_DEAD_LETTERED, final
    assert final.refunded, final
    listed = platform.cli("admin", "dead-letters")
    assert listed.code == 0, listed.stdout + listed.stderr
    assert poison.job_id in listed.stdout, listed.stdout
    settled = assert_settled(
        platform,
        world.client,
        world.tenant,
        {**before.accepted, **after.accepted, poison.job_id: poison},
        all_done=False,
    )
    assert [job.job_id for job in settled.jobs.values() if job.state != DONE] == [poison.job_id]
    assert len(settled.serials) == 20

    # The cause fixed (nothing kills the workers any more), the operator stamps it again.
    redriven = platform.cli("admin", "dead-letters", "--redrive", poison.job_id, "--json")
    assert redriven.code == 0, redriven.stdout + redriven.stderr
    (again,) = world.client.wait_terminal([redriven.json()["new_job_id"]], 60).values()
    assert again.state == DONE, again
    assert again.serial != final.serial
    assert poison.job_id not in platform.cli("admin", "dead-letters").stdout


def _signing(world: World) -> tuple[int, int, int]:
    """(ready, unacknowledged, consumers) of the signing queue."""
    return queue_depths(world.vhost).get(SIGNING_QUEUE, (0, 0, 0))


# -- operator view -----------------------------------------------------------------------------
def test_admin_queues_shows_backlog_in_flight_workers_and_dead_letters(world: World) -> None:
    """``meterai admin queues`` reports what an operator acts on, in documents, from the
    database and the broker: with the only signing worker frozen, five submissions are backlog
    and all five were sent to the signing tier, whatever number of batch tasks carry them (the
    worker holds one, the rest wait in the queue); thawed, the backlog drains to zero."""
    platform = world.platform
    (worker,) = world.cluster.running_workers()
    signal_group(platform, worker, signal.SIGSTOP)
    try:
        batch = submit_batch(world.client, 5, threads=1)
        assert batch.codes() == {"OK": 5}, batch.codes()
        wait_for(
            "every document sent",
            lambda: _queues_report(platform)["outbox"]["unpublished"] == 0,
            30,
        )
        wait_for("one task held", lambda: _signing(world)[1:] == (1, 1), 30)
        stalled = _queues_report(platform)
    finally:
        signal_group(platform, worker, signal.SIGCONT)
    assert stalled["summary"] == {
        "backlog": 5,
        "in_flight": 5,
        "dead_lettered": _dead_lettered(platform),
        "signing_workers": 1,
    }
    ready, _held, _consumers = _signing(world)
    assert stalled["queues"]["signing"] == {"ready": ready, "consumers": 1}
    assert ready <= 4  # tasks, each of one or more documents
    assert stalled["outbox"]["unpublished"] == 0  # every task reached the broker
    assert_settled(platform, world.client, world.tenant, batch.accepted)
    drained = _queues_report(platform)
    assert (drained["summary"]["backlog"], drained["summary"]["in_flight"]) == (0, 0)
    assert drained["jobs"]["DONE"] >= 5


def _queues_report(platform: DistributedPlatform) -> dict[str, Any]:
    result = platform.cli("admin", "queues", "--json")
    assert result.code == 0, result.stdout + result.stderr
    report: dict[str, Any] = result.json()
    return report


def _dead_lettered(platform: DistributedPlatform) -> int:
    engine = sa.create_engine(platform.env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            query = "SELECT count(*) FROM jobs WHERE state = 'DEAD_LETTERED'"
            return int(conn.scalar(sa.text(query)) or 0)
    finally:
        engine.dispose()
