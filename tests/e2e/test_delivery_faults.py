"""Faults on the delivery paths of batched signing: every accepted job is stamped once.

Sign requests travel in batches (up to 16 documents a task) and the answers of a batch in one
message, so a fault that strikes one message strikes several documents. These tests inject the
faults of the README's reliability list that hit exactly those messages, each on a distributed
platform (every service its own process, one Celery signing worker with a prefork pool) and
judge the end state with :func:`~tests.support.faults.assert_settled`: every job terminal and
DONE, one serial each and ISSUED, quota conserved (nothing charged twice, nothing left held),
outbox drained, ``meterai admin reconcile`` clean.

The platform of the first tests runs on the shared PostgreSQL and RabbitMQ, on a database and
a virtual host of its own, and disturbs neither server; the broker-level faults (a consumer
past ``consumer_timeout``, a disk alarm) run on a RabbitMQ node of this module's own
(``tests/support/rabbit_cluster.py``), so no mark for the disruptive phase is needed.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import pytest

from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai_common.messaging import ensure_topology_at
from tests.support.channels import platform_channel
from tests.support.faults import (
    DOCUMENT,
    RECT,
    Batch,
    StampingClient,
    Tenant,
    add_worker_without_reject_on_worker_lost,
    assert_settled,
    create_operator,
    fresh_database,
    fresh_vhost,
    jobs_locked,
    process_children,
    provision_tenant,
    queue_depths,
    respawn,
    signal_group,
    signature_checks_waiting,
    submit_batch,
    vhost_of,
    wait_for,
)
from tests.support.launch import DistributedPlatform
from tests.support.rabbit_cluster import RabbitCluster, rabbit_cluster
from tests.support.tcp_proxy import AmqpProxy

UNITS = 40
BATCH = 8
"""Documents of the one task a pool process is killed or hung in."""
SIGNING_QUEUE = "signing"
DONE = stamping_pb2.JOB_STATE_DONE
PREPARED = stamping_pb2.JOB_STATE_PREPARED
DEAD_LETTERED = stamping_pb2.JOB_STATE_DEAD_LETTERED
MiB = 1024 * 1024
TICK_EVERY_SECOND = "[{rabbit, [{channel_tick_interval, 1000}]}].\n"
"""The own node's ``advanced.config``: a channel checks its consumers' acknowledgement deadline
(``consumer_timeout``) on each tick, every 60 s by default."""


@dataclass
class Deployment:
    platform: DistributedPlatform
    amqp_url: str
    operator_key: str
    depths: Callable[[], dict[str, tuple[int, int, int]]]
    """``{queue: (ready, unacknowledged, consumers)}`` of the platform's virtual host."""
    answering_port: int
    """A second stamping service, started with ``METERAI_STAMPING_FINISHERS=0``: it answers
    resellers and publishes nothing, leaving its outbox rows to the first one's relay."""
    broker: RabbitCluster | None = None
    """The module's own RabbitMQ node, for the platform that runs on it."""
    worker: str = "worker-0"
    """The one ordinary signing worker every test starts from."""


@dataclass
class World:
    deployment: Deployment
    client: StampingClient
    tenant: Tenant
    answering: StampingClient
    """The tenant's client of the answering-only stamping service."""

    @property
    def platform(self) -> DistributedPlatform:
        return self.deployment.platform

    @property
    def database_url(self) -> str:
        return self.platform.env["DATABASE_URL"]

    def signing(self) -> tuple[int, int, int]:
        """(ready, unacknowledged, consumers) of the signing queue."""
        return self.deployment.depths().get(SIGNING_QUEUE, (0, 0, 0))

    def replace_worker(self, start: Callable[[], object]) -> None:
        """Stop the ordinary worker and start the test's own with ``start()``; it is the only
        consumer of the signing queue once this returns."""
        self.platform.stop(self.deployment.worker)
        # The broker counts a consumer until it notices the connection closed.
        wait_for("the ordinary worker gone", lambda: self.signing()[2] == 0, 30)
        start()
        wait_for("the test's worker consuming", lambda: self.signing()[2] == 1, 60)


@contextmanager
def _platform_on(
    root: Path, database_url: str, amqp_url: str
) -> Iterator[tuple[DistributedPlatform, int, str]]:
    """The distributed platform with one signing worker and an answering-only stamping
    service (:attr:`Deployment.answering_port`); its port and an operator key."""
    root.mkdir(parents=True, exist_ok=True)
    platform = DistributedPlatform(root)
    try:
        platform.start(database_url, amqp_url, workers=1)
        port = platform.add_stamping(
            "stamping-answering", extra_env={"METERAI_STAMPING_FINISHERS": "0"}
        )
        yield platform, port, create_operator(platform)
    finally:
        for process in platform.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGCONT)
        platform.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The platform on the shared servers: a database and a virtual host of its own."""
    root = tmp_path_factory.mktemp("delivery-faults")
    with (
        fresh_database() as database_url,
        fresh_vhost() as amqp_url,
        _platform_on(root, database_url, amqp_url) as (platform, port, operator_key),
    ):
        vhost = vhost_of(amqp_url)
        yield Deployment(platform, amqp_url, operator_key, lambda: queue_depths(vhost), port)


@pytest.fixture(scope="module")
def own_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The platform on a RabbitMQ node of the module's own, whose channels check their
    consumers' acknowledgement deadline every second (``channel_tick_interval``)."""
    root = tmp_path_factory.mktemp("delivery-faults-node")
    with (
        rabbit_cluster(root / "rabbit", size=1, advanced_config=TICK_EVERY_SECOND) as broker,
        fresh_database() as database_url,
    ):
        amqp_url = broker.url_of(broker.nodes[0])
        ensure_topology_at(amqp_url)
        with _platform_on(root / "platform", database_url, amqp_url) as (
            platform,
            port,
            operator_key,
        ):
            depths = partial(queue_depths, "/", partial(broker.ctl, broker.nodes[0]))
            yield Deployment(platform, amqp_url, operator_key, depths, port, broker)


def _world_on(deployment: Deployment) -> Iterator[World]:
    platform = deployment.platform
    for service in ("quota", "stamping", "signing", "verify"):
        if platform.processes[service].poll() is not None:
            respawn(platform, service)
    tenant = provision_tenant(platform, UNITS, deployment.operator_key, f"D-{uuid.uuid4().hex[:6]}")
    client = StampingClient(platform, tenant.api_key)
    answering = StampingClient(platform, tenant.api_key, stamping_port=deployment.answering_port)
    world = World(deployment, client, tenant, answering)
    try:
        answering.all_jobs()  # waits while the service is still starting
        yield world
    finally:
        client.close()
        answering.close()
        replaced = platform.processes[deployment.worker].poll() is not None
        for name in [n for n in platform.processes if n.endswith("-worker")]:
            if platform.processes[name].poll() is None:
                signal_group(platform, name, signal.SIGCONT)
            platform.stop(name, signal.SIGKILL)
            del platform.processes[name]
        if replaced:
            wait_for("the test's workers gone", lambda: world.signing()[2] == 0, 30)
            platform.add_worker(deployment.worker)
        wait_for("the ordinary worker consuming", lambda: world.signing()[2] == 1, 60)


@pytest.fixture
def world(deployment: Deployment) -> Iterator[World]:
    """The platform on the shared servers with its one ordinary signing worker, and a new
    reseller with paid quota; whatever worker a test started instead is stopped afterwards."""
    yield from _world_on(deployment)


@pytest.fixture
def own_world(own_node: Deployment) -> Iterator[World]:
    """:func:`world` on the platform of the module's own RabbitMQ node."""
    yield from _world_on(own_node)


@contextmanager
def _pool_process_inside_a_batch(
    world: World, worker: str, count: int = BATCH
) -> Iterator[tuple[Batch, int]]:
    """Have ``worker`` take one task holding ``count`` documents, and yield them and the pid of
    the worker's pool process while that process is inside the task, for the test to kill or
    freeze it there.

    One task for all the documents: they are submitted through the answering-only stamping
    service while the stamping service whose relay publishes sign requests is frozen, so the
    relay, thawed, finds them all in one round. "Inside" is made certain rather than timed:
    the ``jobs`` table is locked before the relay thaws, so the pool process stops in the
    task's first step (the one read that checks the batch against the committed jobs), where
    the database shows it waiting; the lock is released when the block ends.
    """
    platform = world.platform
    signal_group(platform, "stamping", signal.SIGSTOP)
    thawed = False
    try:
        batch = submit_batch(world.answering, count, threads=4)
        assert batch.codes() == {"OK": count}, batch.codes()
        with jobs_locked(world.database_url):
            signal_group(platform, "stamping", signal.SIGCONT)
            thawed = True
            wait_for(
                "the pool process inside the task",
                lambda: signature_checks_waiting(world.database_url) == 1,
                10,
                every=0.02,
            )
            children = process_children(platform.processes[worker].pid)
            assert len(children) == 1, f"expected one pool process, found {children}"
            yield batch, children[0]
    finally:
        if not thawed:
            signal_group(platform, "stamping", signal.SIGCONT)


def _kill_the_pool_process_holding_a_batch(world: World, worker: str) -> Batch:
    """SIGKILL ``worker``'s pool process inside a batch task, as the kernel's OOM killer
    would; the Celery parent survives and sees its pool process lost."""
    with _pool_process_inside_a_batch(world, worker) as (batch, child):
        os.kill(child, signal.SIGKILL)
    return batch


# -- a prefork pool process killed -------------------------------------------------------------
def test_a_pool_process_killed_holding_a_batch_has_each_document_stamped_once(
    world: World,
) -> None:
    """The pool process dies holding a batch; with ``reject_on_worker_lost`` the Celery parent
    gives the task back to the broker, which delivers it again; the worker splits the returned
    batch into one task per document and every document is stamped once."""
    batch = _kill_the_pool_process_holding_a_batch(world, world.deployment.worker)
    settled = assert_settled(world.platform, world.client, world.tenant, batch.accepted)
    assert len(settled.serials) == len(batch.accepted)
    log = world.platform.log(world.deployment.worker)
    assert "WorkerLostError" in log, "the pool process's death went unnoticed"
    assert f"a batch of {BATCH} sign requests came back; splitting it" in log, (
        "the batch was not delivered a second time"
    )


def test_control_without_reject_on_worker_lost_the_killed_batch_is_lost(world: World) -> None:
    """Control run of the test above, proving the setting it relies on: the same kill on a
    worker whose tasks do not reject on a lost worker (Celery's default) acknowledges the batch
    as failed once the parent notices the loss. The broker forgets it and its documents stay
    PREPARED, waiting for the stamping service's database re-drive a minute later (not awaited
    here: that rescue is ``tests/e2e/test_faults.py``'s business, and the wait would cost a
    minute of CI)."""
    control = "control-worker"
    world.replace_worker(lambda: add_worker_without_reject_on_worker_lost(world.platform, control))
    batch = _kill_the_pool_process_holding_a_batch(world, control)
    wait_for(
        "the worker to notice its pool process lost",
        lambda: "WorkerLostError" in world.platform.log(control),
        30,
    )
    # The queue's counts lag the ack a little; the batch given back would also end at (0, 0),
    # but only once every document of it was stamped.
    wait_for("the broker to hold nothing of the batch", lambda: world.signing()[:2] == (0, 0), 15)
    jobs = world.client.all_jobs()
    assert {job.job_id for job in jobs} == set(batch.accepted)
    waiting = [job for job in jobs if job.state == PREPARED]
    assert len(waiting) == BATCH, (
        f"the killed batch was not lost ({len(waiting)} documents waiting): the control run "
        "tests nothing"
    )
    assert "came back; splitting it" not in world.platform.log(control)


# -- a document whose finishing fails, inside a batch of answers -------------------------------
def test_a_document_that_cannot_be_finished_inside_a_batch_is_set_aside_alone(
    world: World,
) -> None:
    """One document of a signed batch cannot be finished: a directory stands where its
    prepared file was, which no process can read as a file, as after a disk error. Its batch's
    answers, one message, fail at finishing and come back; delivered again they are finished
    one at a time, from either end in turn (``meterai_stamping/domain/answer_batches.py``), so
    the other documents are stamped and that one alone meets the delivery limit: dead-lettered,
    refunded, and the only one of the batch the operator's dead-letter list names. Before,
    the whole batch went to the dead letters with it."""
    platform = world.platform
    with _pool_process_inside_a_batch(world, world.deployment.worker) as (batch, _child):
        bad = sorted(batch.accepted)[BATCH // 2]
        prepared = platform.home / "documents" / "prepared" / f"{bad}.pdf"
        prepared.unlink()
        prepared.mkdir()
    try:
        settled = assert_settled(
            platform, world.client, world.tenant, batch.accepted, all_done=False
        )
    finally:
        prepared.rmdir()
    others = {job_id: job for job_id, job in settled.jobs.items() if job_id != bad}
    assert settled.jobs[bad].state == DEAD_LETTERED, settled.jobs[bad]
    assert {job.state for job in others.values()} == {DONE}, [
        (job.job_id, stamping_pb2.JobState.Name(job.state)) for job in others.values()
    ]
    listed = platform.cli("admin", "dead-letters")
    assert listed.code == 0, listed.stdout + listed.stderr
    assert bad in listed.stdout, listed.stdout
    assert not [job_id for job_id in others if job_id in listed.stdout], listed.stdout
    assert "IsADirectoryError" in platform.log("stamping")


# -- upload limits -------------------------------------------------------------------------------
def _peak_rss(pid: int) -> int:
    """Peak resident memory of ``pid`` since its last reset (``VmHWM``), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _reset_peak_rss(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def test_an_upload_above_the_limit_is_refused_before_it_is_read_and_charges_nothing(
    world: World,
) -> None:
    """A 64 MiB submit (the gRPC limit is 25 MiB: a 20 MiB document plus framing) is refused
    RESOURCE_EXHAUSTED by the stamping server's transport from the message's length prefix,
    before the body is buffered: the server's peak memory grows by far less than the body.
    A 22 MiB one, within the transport limit but above ``METERAI_MAX_DOCUMENT_BYTES``, is
    refused RESOURCE_EXHAUSTED by the service, saying what to do. Neither charges anything."""
    platform = world.platform
    pid = platform.processes["stamping"].pid
    channel = platform_channel(
        platform.home,
        platform.base_port + 1,
        options=[("grpc.max_send_message_length", 128 * MiB), ("grpc.enable_retries", 0)],
    )
    stub = stamping_pb2_grpc.StampingServiceStub(channel)

    def submit(size: int) -> grpc.RpcError:
        request = stamping_pb2.SubmitDocumentRequest(
            pdf=DOCUMENT + b"%" * (size - len(DOCUMENT)),
            placement=stamping_pb2.Placement(page=1, rect=RECT),
            metadata=stamping_pb2.DocumentMetadata(document_type="Surat", document_number="1"),
            idempotency_key=f"large-{size}",
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubmitDocument(request, metadata=world.client.metadata, timeout=60)
        return refused.value

    try:
        world.client.all_jobs()  # the stamping server has served this tenant: it is warm
        _reset_peak_rss(pid)
        before = _peak_rss(pid)
        transport = submit(64 * MiB)
        grown = _peak_rss(pid) - before
        document = submit(22 * MiB)
    finally:
        channel.close()
    assert transport.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, transport
    assert "larger than max" in (transport.details() or ""), transport.details()
    assert grown < 16 * MiB, f"the server's peak memory grew by {grown / MiB:.0f} MiB"
    assert document.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, document
    assert "Compress or split it" in (document.details() or ""), document.details()
    balance = world.client.balance()
    assert (balance.available, balance.held, balance.consumed) == (UNITS, 0, 0), balance
    assert world.client.all_jobs() == []


# -- a publisher confirm lost ----------------------------------------------------------------------
def test_an_answer_whose_confirm_is_lost_is_published_again_and_finished_once(
    world: World,
) -> None:
    """The signing worker reaches RabbitMQ through a proxy that cuts its connection at the
    broker's first publisher confirm, which it swallows: the broker holds the batch's answers,
    the worker saw no confirm. The worker publishes the same answers again on a new connection,
    so the stamping tier receives them twice and finishes each document once: one serial per
    document, one unit consumed each, reconcile clean."""
    deployment = world.deployment
    proxy = AmqpProxy(("127.0.0.1", 5672))
    name = "proxied-worker"
    try:
        env = {
            **world.platform._env_of("signing-worker"),
            "AMQP_URL": proxy.url(deployment.amqp_url),
        }
        world.replace_worker(
            lambda: world.platform._spawn(name, "worker", "signing", "--concurrency", "1", env=env),
        )
        proxy.lose_next_confirm()
        batch = submit_batch(world.client, 6, threads=3)
        assert batch.codes() == {"OK": 6}, batch.codes()
        settled = assert_settled(world.platform, world.client, world.tenant, batch.accepted)
    finally:
        proxy.close()
    assert len(settled.serials) == 6
    (lost,) = proxy.lost
    assert lost.body, "the swallowed confirm followed no publish seen by the proxy"
    assert lost.body in proxy.published_after(lost), "the unconfirmed answers were not republished"


# -- a consumer hung past consumer_timeout ---------------------------------------------------------
CONSUMER_TIMEOUT_MS = 3000
"""The own node's ``consumer_timeout`` for the hung worker's channel (RabbitMQ's default:
30 minutes)."""
DEFAULT_CONSUMER_TIMEOUT_MS = 1_800_000


def test_a_pool_process_hung_past_the_consumer_timeout_gives_its_batch_up_to_be_stamped_once(
    own_world: World,
) -> None:
    """A signing worker's pool process hangs inside a batch task (SIGSTOP) while its Celery
    parent stays alive and answers the broker. After ``consumer_timeout`` the broker closes the
    parent's channel, the batch goes back to the queue and a second worker splits and signs it:
    every document stamped once, well before the stamping service's one-minute re-drive. The
    hung process is then woken with the stale batch in hand; whatever it does with it, each
    document stays stamped once.

    The whole worker frozen would not do: RabbitMQ closes a timed-out channel only once the
    client confirms the close, so a process that answers nothing keeps its deliveries until
    heartbeats declare its connection dead (a minute with Celery's 30 s heartbeat). Celery
    takes the closed channel for an unrecoverable error and its worker exits, so a supervisor
    must restart it; in production the task's hard time limit (120 s) ends a hung pool process
    long before RabbitMQ's default ``consumer_timeout`` (30 min) would.
    """
    world = own_world
    platform = world.platform
    broker = world.deployment.broker
    assert broker is not None
    node = broker.nodes[0]
    hung, rescuer = "hung-worker", "rescue-worker"
    broker.set_consumer_timeout(node, CONSUMER_TIMEOUT_MS)
    child = 0
    try:
        world.replace_worker(lambda: platform.add_worker(hung))
        with _pool_process_inside_a_batch(world, hung) as (batch, child):
            os.kill(child, signal.SIGSTOP)
        platform.add_worker(rescuer)
        settled = assert_settled(platform, world.client, world.tenant, batch.accepted, timeout=30)
    finally:
        broker.set_consumer_timeout(node, DEFAULT_CONSUMER_TIMEOUT_MS)
        if child:
            os.kill(child, signal.SIGCONT)
    assert len(settled.serials) == len(batch.accepted)
    assert "timed out waiting for delivery acknowledgement" in broker.log_tail(node, 50_000)
    logs = platform.log(hung) + platform.log(rescuer)
    assert f"a batch of {BATCH} sign requests came back; splitting it" in logs, (
        "the batch was not delivered a second time"
    )
    wait_for(
        "the woken pool process done with its stale batch",
        lambda: any(end in platform.log(hung) for end in ("succeeded in", "raised", "exited with")),
        30,
    )
    again = assert_settled(platform, world.client, world.tenant, batch.accepted)
    assert again.serials == settled.serials


# -- a disk alarm ---------------------------------------------------------------------------------
def test_a_disk_alarm_keeps_the_api_answering_and_the_backlog_drains_once_it_clears(
    own_world: World,
) -> None:
    """A disk alarm on the broker (its free-disk limit raised above the disk's size) blocks
    every publisher for about eight seconds. Every submission is answered within its deadline,
    accepted into the outbox or refused with retry advice (nothing charged), reads keep
    working, and nothing accepted during the alarm is signed until it clears; then the backlog
    drains and every accepted job is stamped once."""
    world = own_world
    broker = world.deployment.broker
    assert broker is not None
    deadline_s = 5.0
    before = submit_batch(world.client, 4, threads=2, timeout=deadline_s)
    assert before.codes() == {"OK": 4}, before.codes()
    with broker.disk_alarm(broker.nodes[0]):
        during = submit_batch(world.client, 16, threads=2, timeout=deadline_s, pace_s=1.0)
        reads = [world.client.get(job_id, timeout=deadline_s) for job_id in during.accepted]
        stamped_in_alarm = sum(job.state == DONE for job in reads)
    codes = during.codes()
    assert set(codes) <= {"OK", "UNAVAILABLE", "RESOURCE_EXHAUSTED"}, codes
    assert codes.get("OK", 0) >= 1, codes
    assert max(o.elapsed for o in during.outcomes) < deadline_s, during.outcomes
    assert all("retry in" in o.details for o in during.refused), [o.details for o in during.refused]
    assert stamped_in_alarm == 0, (
        f"{stamped_in_alarm} stamped through the alarm: it blocked nothing"
    )
    accepted = {**before.accepted, **during.accepted}
    settled = assert_settled(world.platform, world.client, world.tenant, accepted, timeout=60)
    assert len(settled.serials) == len(accepted)
