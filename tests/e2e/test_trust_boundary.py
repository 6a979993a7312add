"""The trust boundary, tried as an outsider would: every service as its own process on
PostgreSQL and RabbitMQ, reached over real TLS channels.

* Plaintext is refused on every port; TLS that trusts the platform CA is served.
* The signing port serves platform services only: no certificate, a reseller's certificate
  or another service's certificate are each refused, with a status that says why.
* A reseller's client certificate authenticates as that reseller and no other, and a revoked
  one is refused on its very next call.
* The bus is not a back door: a forged ``DigestSigned`` (garbage, a genuine signature over
  another digest, a signature by another key) fails the job and refunds it, issues no serial,
  and reconciliation still balances; a forged sign task makes no signature.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pika
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meterai.events.v1 import events_pb2
from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai.signing.v1 import signing_pb2, signing_pb2_grpc
from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai.verify.v1 import verify_pb2
from meterai_common.messaging import EVENTS_EXCHANGE
from meterai_common.tasks import SIGN_DIGEST_TASK
from meterai_common.tls import ClientTls, TlsFiles, ensure_platform_tls, issue_reseller_certificate
from meterai_signing.cms import load_identity, sign_digest
from meterai_signing.pki import ensure_test_pki, generate_test_pki
from tests.support.channels import platform_channel
from tests.support.faults import (
    StampingClient,
    Tenant,
    create_operator,
    fresh_database,
    fresh_vhost,
    wait_for,
)
from tests.support.launch import DistributedPlatform

pytestmark = pytest.mark.e2e

HEALTH = health_pb2.HealthCheckRequest(service="")


@dataclass
class Platform:
    platform: DistributedPlatform
    amqp_url: str
    operator_key: str

    @property
    def files(self) -> TlsFiles:
        return TlsFiles(self.platform.home / "tls")

    def port(self, service: str) -> int:
        offsets = {"quota": 0, "stamping": 1, "signing": 2, "verify": 3}
        offsets |= {"quota_mtls": 4, "stamping_mtls": 5}
        return self.platform.base_port + offsets[service]

    def tenant(self, units: int = 3) -> tuple[Tenant, str]:
        """A new reseller with ``units`` paid, and its id."""
        created = self.platform.cli(
            "admin", "create-reseller", f"Trust {uuid.uuid4().hex[:8]}", "--json"
        )
        assert created.code == 0, created.stderr
        tenant = Tenant(str(created.json()["api_key"]), units)
        bought = self.platform.cli("quota", "buy", str(units), "--json", api_key=tenant.api_key)
        assert bought.code == 0, bought.stderr
        confirmed = self.platform.cli(
            "quota", "confirm", str(bought.json()["order_id"]),
            "--reference", f"pay-{uuid.uuid4().hex[:12]}", "--amount", str(units * 10_000),
            api_key=self.operator_key,
        )  # fmt: skip
        assert confirmed.code == 0, confirmed.stderr
        return tenant, str(created.json()["reseller_id"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with fresh_database() as database_url, fresh_vhost() as amqp_url:
        platform = DistributedPlatform(tmp_path_factory.mktemp("trust"))
        try:
            platform.start(database_url, amqp_url, workers=0)
            yield Platform(platform, amqp_url, create_operator(platform))
        finally:
            platform.stop()


def _health(channel: grpc.Channel) -> int:
    with channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(HEALTH, timeout=5)
    return int(answer.status)


def _code(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    raise AssertionError("the call was not refused")


# -- transport ---------------------------------------------------------------------------------
@pytest.mark.parametrize("service", ["quota", "stamping", "signing", "verify"])
def test_every_port_refuses_plaintext(world: Platform, service: str) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{world.port(service)}")
    code, _ = _code(lambda: _health(channel))
    assert code is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("service", ["quota", "stamping", "verify"])
def test_public_ports_serve_tls_to_clients_trusting_the_platform_ca(
    world: Platform, service: str
) -> None:
    assert _health(platform_channel(world.platform.home, world.port(service))) == 1


def test_a_client_trusting_another_ca_does_not_connect(world: Platform, tmp_path: Path) -> None:
    stranger = ensure_platform_tls(tmp_path / "other-ca")
    code, _ = _code(lambda: _health(platform_channel(stranger, world.port("stamping"))))
    assert code is grpc.StatusCode.UNAVAILABLE
    result = world.platform.cli("--ca", str(stranger.ca_certificate), "quota", "balance")
    assert result.code == 3
    assert "TLS handshake failed" in result.stderr and "--ca" in result.stderr


# -- the signing port ----------------------------------------------------------------------------
def _chain(world: Platform, tls: ClientTls) -> signing_pb2.CertificateChain:
    channel = grpc.secure_channel(f"127.0.0.1:{world.port('signing')}", tls.credentials())
    with channel:
        return signing_pb2_grpc.SigningServiceStub(channel).GetCertificateChain(
            signing_pb2.GetCertificateChainRequest(), timeout=5
        )


def test_the_signing_port_serves_the_stamping_tier(world: Platform) -> None:
    chain = _chain(world, world.files.client("stamping"))
    assert chain.signature_size > 0 and len(chain.certificates) >= 2


def test_the_signing_port_has_no_rpc_that_signs() -> None:
    methods = signing_pb2.DESCRIPTOR.services_by_name["SigningService"].methods_by_name
    assert set(methods) == {"GetCertificateChain"}


def test_the_signing_port_refuses_a_caller_without_a_certificate(world: Platform) -> None:
    code, _ = _code(lambda: _chain(world, world.files.client()))
    assert code is grpc.StatusCode.UNAVAILABLE  # the handshake itself asks for one


def test_the_signing_port_refuses_a_reseller_certificate(world: Platform, tmp_path: Path) -> None:
    _, reseller_id = world.tenant(units=1)
    certificate, key, _ = issue_reseller_certificate(world.files, reseller_id)
    tls = ClientTls(world.files.ca_certificate.read_bytes(), certificate, key)
    code, details = _code(lambda: _chain(world, tls))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "reseller certificate may not call it" in details


def test_the_signing_port_refuses_a_certificate_of_another_service(world: Platform) -> None:
    code, details = _code(lambda: _chain(world, world.files.client("verify")))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "certificate of verify may not call it" in details


# -- resellers by certificate --------------------------------------------------------------------
def _issue(world: Platform, reseller_id: str, out: Path) -> tuple[Path, Path, str]:
    result = world.platform.cli(
        "admin", "tls", "issue-client", "--reseller", reseller_id, "--out", str(out), "--json"
    )
    assert result.code == 0, result.stderr
    data = result.json()
    return Path(str(data["certificate"])), Path(str(data["key"])), str(data["fingerprint"])


def _balance_by_certificate(world: Platform, certificate: Path, key: Path) -> quota_pb2.Balance:
    tls = ClientTls(
        world.files.ca_certificate.read_bytes(), certificate.read_bytes(), key.read_bytes()
    )
    channel = grpc.secure_channel(f"127.0.0.1:{world.port('quota_mtls')}", tls.credentials())
    with channel:
        return quota_pb2_grpc.QuotaServiceStub(channel).GetBalance(
            quota_pb2.GetBalanceRequest(), timeout=5
        )


def test_a_reseller_certificate_authenticates_as_that_reseller_until_revoked(
    world: Platform, tmp_path: Path
) -> None:
    world.tenant(units=3)  # another reseller, whose balance the certificate must not see
    _, reseller_id = world.tenant(units=1)
    certificate, key, fingerprint = _issue(world, reseller_id, tmp_path / "certs")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert _balance_by_certificate(world, certificate, key).available == 1
    cli = world.platform.cli(
        "--client-cert", str(certificate), "--client-key", str(key), "quota", "balance", "--json"
    )
    assert cli.code == 0, cli.stderr
    assert cli.json()["available"] == 1

    revoked = world.platform.cli("admin", "tls", "revoke-client", fingerprint)
    assert revoked.code == 0, revoked.stderr
    code, details = _code(lambda: _balance_by_certificate(world, certificate, key))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in details and "new one" in details


def test_an_unregistered_reseller_certificate_is_refused(world: Platform) -> None:
    _, reseller_id = world.tenant(units=1)
    certificate, key, _ = issue_reseller_certificate(world.files, reseller_id)
    tls = ClientTls(world.files.ca_certificate.read_bytes(), certificate, key)
    channel = grpc.secure_channel(f"127.0.0.1:{world.port('stamping_mtls')}", tls.credentials())
    with channel:
        code, details = _code(
            lambda: stamping_pb2_grpc.StampingServiceStub(channel).ListJobs(
                stamping_pb2.ListJobsRequest(page_size=1), timeout=5
            )
        )
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert "not registered" in details


def test_an_expired_reseller_certificate_does_not_connect(world: Platform, tmp_path: Path) -> None:
    _, reseller_id = world.tenant(units=1)
    issued = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    certificate, key, _ = issue_reseller_certificate(
        world.files, reseller_id, now=issued, validity=datetime.timedelta(days=1)
    )
    (tmp_path / "old.crt").write_bytes(certificate)
    (tmp_path / "old.key").write_bytes(key)
    code, _ = _code(
        lambda: _balance_by_certificate(world, tmp_path / "old.crt", tmp_path / "old.key")
    )
    assert code is grpc.StatusCode.UNAVAILABLE
    cli = world.platform.cli(
        "--client-cert", str(tmp_path / "old.crt"), "--client-key", str(tmp_path / "old.key"),
        "quota", "balance",
    )  # fmt: skip
    assert cli.code == 3 and "not expired" in cli.stderr


def test_a_key_in_the_wrong_header_is_refused_with_the_right_one_named(world: Platform) -> None:
    tenant, _ = world.tenant(units=1)
    channel = platform_channel(world.platform.home, world.port("quota"))
    with channel:
        code, details = _code(
            lambda: quota_pb2_grpc.QuotaServiceStub(channel).GetBalance(
                quota_pb2.GetBalanceRequest(),
                metadata=(("api-key", tenant.api_key),),
                timeout=5,
            )
        )
    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert "'api-key'" in details and "'x-api-key'" in details


# -- the bus ---------------------------------------------------------------------------------------
def _publish(world: Platform, routing_key: str, body: bytes, *, exchange: str = EVENTS_EXCHANGE,
             properties: pika.BasicProperties | None = None) -> None:  # fmt: skip
    connection = pika.BlockingConnection(pika.URLParameters(world.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange,
            routing_key,
            body,
            properties=properties
            or pika.BasicProperties(delivery_mode=2, message_id=uuid.uuid4().hex),
        )
    finally:
        connection.close()


def _forged_answer(world: Platform, tmp_path: Path, forgery: str, digest: bytes) -> bytes:
    """A signing answer nobody in the platform made, for a job whose document has ``digest``."""
    if forgery == "garbage":
        return b"\x30\x03\x02\x01\x00"
    if forgery == "another digest":  # the platform's own key, over some other document
        pki = ensure_test_pki(world.platform.home / "pki")
        identity = load_identity(pki.signer_key, pki.chain)
        return sign_digest(identity, hashlib.sha256(b"SURAT HUTANG Rp 1.000.000.000").digest())
    stranger = generate_test_pki(tmp_path / "stranger-pki")  # this very digest, another key
    return sign_digest(load_identity(stranger.signer_key, stranger.chain), digest)


@pytest.mark.parametrize("forgery", ["garbage", "another digest", "another key"])
def test_a_forged_signing_answer_fails_the_job_and_refunds_it(
    world: Platform, tmp_path: Path, forgery: str
) -> None:
    tenant, _ = world.tenant(units=2)
    client = StampingClient(world.platform, tenant.api_key)
    try:
        job = client.submit(f"forged-{uuid.uuid4().hex[:8]}")
        assert client.balance().held == 1
        cms = _forged_answer(world, tmp_path, forgery, bytes.fromhex(job.document_digest))
        forged = events_pb2.DigestSigned(job_id=job.job_id, serial=job.serial, cms=cms)
        _publish(world, "DigestSigned", forged.SerializeToString())
        final = client.wait_terminal([job.job_id], timeout=30)[job.job_id]
        assert final.state == stamping_pb2.JOB_STATE_FAILED
        assert "not the platform's signature" in final.failure_reason
        balance = client.balance()
        assert (balance.available, balance.held, balance.consumed) == (2, 0, 0)
        assert client.serial_status(job.serial) != verify_pb2.SERIAL_STATUS_ISSUED
    finally:
        client.close()
    reconcile = world.platform.cli("admin", "reconcile", "--json")
    assert reconcile.code == 0, reconcile.stdout + reconcile.stderr
    assert "rejected the signing answer" in world.platform.log("stamping")


def test_a_forged_sign_task_makes_no_signature(world: Platform) -> None:
    """A task published straight onto the signing queue for a job nobody committed: the worker
    refuses it and logs why; nothing is signed or announced."""
    job_id = str(uuid.uuid4())
    digest = hashlib.sha256(b"SURAT HUTANG Rp 1.000.000.000").hexdigest()
    body = json.dumps([[], {"job_id": job_id, "serial": "0" * 22, "digest": digest}, {}]).encode()
    headers = {
        "lang": "py",
        "task": SIGN_DIGEST_TASK,
        "id": job_id,
        "retries": 0,
        "argsrepr": "()",
        "kwargsrepr": "{}",
    }
    world.platform.add_worker("forgery-worker")
    try:
        _publish(
            world,
            "signing",
            body,
            exchange="",
            properties=pika.BasicProperties(
                delivery_mode=2,
                content_type="application/json",
                content_encoding="utf-8",
                headers=headers,
                correlation_id=job_id,
            ),
        )
        wait_for(
            "the worker to refuse the forged task",
            lambda: f"refused to sign job={job_id}" in world.platform.log("forgery-worker"),
            60,
        )
        time.sleep(0.5)
        assert f"signed job={job_id}" not in world.platform.log("forgery-worker")
        (refusal,) = [
            json.loads(line)
            for line in world.platform.log("forgery-worker").splitlines()
            if f"refused to sign job={job_id}" in line
        ]
        assert refusal["job_id"] == job_id, refusal
        assert refusal["process"] == "worker-signing", refusal
        assert refusal["level"] == "warning", refusal
    finally:
        world.platform.stop("forgery-worker")
