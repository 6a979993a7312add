"""Losing the RabbitMQ node that leads the work queues, in the middle of a surge, loses nothing.

The distributed platform (every service its own process, two Celery signing workers, stamping
finishing signed documents) runs on a database of its own and a three-node RabbitMQ cluster
started for this module (``tests/support/rabbit_cluster.py``); every process is given all three
node addresses in ``AMQP_URL``. The topology is declared through the first node, so the
leaders of the ``signing`` queue (tasks for the signing workers) and of ``stamping.events``
(signed digests for finishing) start there, with replicas on all three nodes. While a
reseller's submissions keep arriving, that node's VM is SIGKILLed.

What must hold: every accepted job ends DONE, or FAILED with its unit refunded; serials are
unique and each is issued once; the ledger reconciles; the surviving nodes elect new leaders
and the outbox publishes again within seconds (measured: from the kill to the confirm of the
first task created after it).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from meterai.stamping.v1 import stamping_pb2
from meterai_common.messaging import SIGNING_QUEUE, STAMPING_EVENTS, ensure_topology_at
from tests.support.faults import (
    Batch,
    StampingClient,
    assert_settled,
    create_operator,
    fresh_database,
    provision_tenant,
    submit_batch,
    wait_for,
)
from tests.support.launch import DistributedPlatform
from tests.support.rabbit_cluster import RabbitCluster, rabbit_cluster

WORK_QUEUES = (SIGNING_QUEUE, STAMPING_EVENTS.name)
PUBLISH_RESUME_BOUND_S = 10.0
"""Publishing must resume this soon after the leader's node dies: a quorum queue's election
takes a few seconds, a client's reconnect to the next listed node well under one."""
SURGE = 120
DONE = stamping_pb2.JOB_STATE_DONE


@dataclass
class Deployment:
    platform: DistributedPlatform
    broker: RabbitCluster
    operator_key: str


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("rabbit-cluster")
    with rabbit_cluster(root) as broker, fresh_database() as database_url:
        # Declared through the first node: quorum queue leaders start on the declaring node.
        ensure_topology_at(broker.url_of(broker.nodes[0]))
        platform = DistributedPlatform(tmp_path_factory.mktemp("cluster-platform"))
        try:
            platform.start(database_url, broker.amqp_url(), workers=2)
            yield Deployment(platform, broker, create_operator(platform))
        finally:
            platform.stop()


def _scalar(platform: DistributedPlatform, sql: str, **params: object) -> object:
    engine = sa.create_engine(
        sa.make_url(platform.env["DATABASE_URL"]).set(drivername="postgresql+psycopg"),
        poolclass=sa.NullPool,
    )
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text(sql), params)
    finally:
        engine.dispose()


def _jobs(platform: DistributedPlatform) -> int:
    count = _scalar(platform, "SELECT count(*) FROM jobs")
    assert isinstance(count, int)
    return count


def _published_after(platform: DistributedPlatform, moment: datetime) -> datetime | None:
    """When the first outbox row created after ``moment`` was confirmed by the broker."""
    first = _scalar(
        platform,
        "SELECT min(published_at) FROM outbox"
        " WHERE created_at > :moment AND published_at IS NOT NULL",
        moment=moment,
    )
    assert first is None or isinstance(first, datetime)
    return first


def test_every_work_queue_is_replicated_on_the_three_nodes(deployment: Deployment) -> None:
    broker = deployment.broker
    assert broker.running_nodes() == sorted(node.name for node in broker.nodes)
    queues = broker.quorum_queues()
    for name in (*WORK_QUEUES, "meterai.dead-letters"):
        assert sorted(queues[name]["members"]) == broker.running_nodes(), queues[name]


def test_killing_the_leaders_node_mid_surge_loses_and_duplicates_nothing(
    deployment: Deployment,
) -> None:
    platform, broker = deployment.platform, deployment.broker
    tenant = provision_tenant(
        platform, SURGE + 50, deployment.operator_key, f"Cluster {uuid.uuid4().hex[:6]}"
    )
    client = StampingClient(platform, tenant.api_key)
    try:
        leaders = {name: broker.quorum_queues()[name]["leader"] for name in WORK_QUEUES}
        assert len(set(leaders.values())) == 1, f"leaders on different nodes: {leaders}"
        victim = broker.node(str(leaders[SIGNING_QUEUE]))

        result: dict[str, Batch] = {}
        surge = threading.Thread(
            target=lambda: result.update(
                batch=submit_batch(client, SURGE, threads=3, timeout=5, pace_s=0.15)
            ),
            daemon=True,
        )
        surge.start()
        # Mid-surge: a third of the submissions are in, and stamps are coming out.
        wait_for("a third of the surge", lambda: _jobs(platform) >= SURGE // 3, 60)
        wait_for(
            "the first stamps",
            lambda: sum(job.state == DONE for job in client.all_jobs()) >= 1,
            60,
        )
        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        broker.kill(victim)

        wait_for(
            "a task created after the kill to be published",
            lambda: _published_after(platform, killed_at) is not None,
            PUBLISH_RESUME_BOUND_S * 3,
        )
        first = _published_after(platform, killed_at)
        assert first is not None
        resumed_s = (first - killed_at).total_seconds()
        new_leaders = {name: broker.quorum_queues()[name]["leader"] for name in WORK_QUEUES}
        surge.join(120)
        assert not surge.is_alive(), "the surge did not finish"
        batch = result["batch"]
        print(
            f"publishing resumed {resumed_s:.2f} s after the kill; leaders moved to "
            f"{new_leaders}; answers {batch.codes()}; surge took "
            f"{time.monotonic() - killed:.1f} s after the kill"
        )
        assert resumed_s < PUBLISH_RESUME_BOUND_S, f"publishing resumed after {resumed_s:.1f} s"
        assert victim.name not in new_leaders.values(), new_leaders
        # Submissions touch only PostgreSQL: the broker's loss must not refuse any.
        assert batch.codes() == {"OK": SURGE}, (
            batch.codes(),
            sorted({o.details for o in batch.refused}),
        )
        settled = assert_settled(
            platform, client, tenant, batch.accepted, timeout=90, all_done=False
        )
        assert set(batch.accepted) <= set(settled.jobs)
        done = settled.in_state(DONE)
        assert len(done) >= SURGE * 0.9, f"only {len(done)} of {SURGE} stamped"
        depth = broker.queue_messages()
        assert depth.get("meterai.dead-letters", 0) == 0, depth
        assert all(depth.get(name, 0) == 0 for name in WORK_QUEUES), depth
    finally:
        client.close()
