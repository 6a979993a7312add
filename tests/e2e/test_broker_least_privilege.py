"""The whole platform on least-privilege broker users, as a deployment runs it.

Every process kind connects to RabbitMQ as its own user (``deploy/rabbitmq/definitions.json``:
no service may configure anything; each may publish only its own events and read only its own
queues), and ``serve signing`` / ``serve verify`` get no broker credentials at all. Stamps still
go through end to end, with a separate finishing worker, which proves no process needs more
than it is granted; and the stamping tier's own credential cannot answer for the signing tier.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from meterai.events.v1 import events_pb2
from meterai.stamping.v1 import stamping_pb2
from meterai.webhooks.v1 import webhooks_pb2
from meterai_common.messaging import EVENTS_EXCHANGE
from tests.support.brokers import BrokerUsers
from tests.support.faults import (
    StampingClient,
    create_operator,
    fresh_database,
    provision_tenant,
)
from tests.support.launch import DistributedPlatform
from tests.support.webhook_receiver import Receiver, serving_receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, broker_users: BrokerUsers, receiver: Receiver
) -> Iterator[DistributedPlatform]:
    with fresh_database() as database_url:
        platform = DistributedPlatform(tmp_path_factory.mktemp("least-privilege"))
        try:
            platform.start(
                database_url,
                broker_users.urls["admin"],  # only for the CLI's own (operator) calls
                workers=1,
                extra_env={"METERAI_STAMPING_FINISHERS": "0"},
                broker_users=broker_users.urls,
            )
            platform.add_finisher("finisher")
            platform.add_webhooks(
                "webhooks",
                {
                    "METERAI_WEBHOOK_CA_FILE": str(receiver.directory / "tls" / "ca.crt"),
                    "METERAI_WEBHOOK_RETRY_BASE_S": "0.2",
                    "METERAI_WEBHOOK_RETRY_CAP_S": "1",
                    "METERAI_WEBHOOK_POLL_S": "0.1",
                },
            )
            yield platform
        finally:
            platform.stop()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with serving_receiver(tmp_path_factory.mktemp("receiver"), hook="ok") as started:
        yield started


def test_stamps_go_through_with_each_process_on_its_own_broker_user(
    platform: DistributedPlatform,
) -> None:
    tenant = provision_tenant(platform, 3, create_operator(platform), name="Least Privilege")
    client = StampingClient(platform, tenant.api_key)
    try:
        jobs = [client.submit(f"lp-{uuid.uuid4().hex[:8]}") for _ in range(3)]
        final = client.wait_terminal([job.job_id for job in jobs], timeout=90)
        assert {job.state for job in final.values()} == {stamping_pb2.JOB_STATE_DONE}
        balance = client.balance()
        assert (balance.available, balance.held, balance.consumed) == (0, 0, 3)
    finally:
        client.close()
    reconcile = platform.cli("admin", "reconcile", "--json")
    assert reconcile.code == 0, reconcile.stdout + reconcile.stderr
    for name in ("signing", "verify"):
        assert "AMQP_URL" not in _environment(platform, name)
    for name in ("quota", "stamping", "finisher", "worker-0", "webhooks"):
        assert "ACCESS_REFUSED" not in platform.log(name), name


def test_the_webhook_dispatcher_delivers_on_its_own_broker_user(
    platform: DistributedPlatform, receiver: Receiver
) -> None:
    """``meterai worker webhooks`` as its own process, reading only ``webhooks.events``."""
    tenant = provision_tenant(platform, 2, create_operator(platform), name="Webhook Reseller")
    client = StampingClient(platform, tenant.api_key)
    try:
        created = client.webhooks.CreateEndpoint(
            webhooks_pb2.CreateEndpointRequest(url=receiver.url("/hook")),
            metadata=client.metadata,
            timeout=10,
        )
        receiver.trust(created.secret)
        jobs = [client.submit(f"wh-{uuid.uuid4().hex[:8]}") for _ in range(2)]
        final = client.wait_terminal([job.job_id for job in jobs], timeout=90)
        assert {job.state for job in final.values()} == {stamping_pb2.JOB_STATE_DONE}
        deadline = time.monotonic() + 30
        while {r["data"].get("job_id") for r in receiver.accepted("hook")} != {
            job.job_id for job in jobs
        }:
            assert time.monotonic() < deadline, platform.log("webhooks")[-3000:]
            time.sleep(0.2)
    finally:
        client.close()
    assert "ACCESS_REFUSED" not in platform.log("webhooks")


def test_the_stamping_tiers_credential_cannot_answer_for_the_signing_tier(
    broker_users: BrokerUsers,
) -> None:
    forged = events_pb2.DigestSigned(job_id=str(uuid.uuid4()), serial="0" * 22, cms=b"x")
    for service in ("stamping", "finishing", "quota"):
        connection = pika.BlockingConnection(pika.URLParameters(broker_users.urls[service]))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
                channel.basic_publish(EVENTS_EXCHANGE, "DigestSigned", forged.SerializeToString())
            assert refused.value.reply_code == 403, service
        finally:
            if connection.is_open:
                connection.close()


def _environment(platform: DistributedPlatform, name: str) -> str:
    pid = platform.processes[name].pid
    return open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
