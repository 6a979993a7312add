"""An in-process platform for the integrator-facing API tests: the real quota and stamping
servicers behind real TLS servers on free ports, on SQLite or PostgreSQL, with a funded
reseller. Documents are generated, so nothing outside the repository is needed.

Signing is done in process by :meth:`ApiWorld.sign`, with the test PKI's key, the way a signing
worker would answer: tests that need a DONE job call it instead of running the signing tier.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine

import meterai_quota as quota
from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai.verify.v1 import verify_pb2_grpc
from meterai_common.auth import Authenticator
from meterai_common.bus import InProcessBus
from meterai_common.db import create_engine, reading, run_in_transaction
from meterai_common.documents import DirectoryStore
from meterai_common.grpc_server import RunningServer, TimedThreadPool, create_server
from meterai_common.outbox import OutboxRelay
from meterai_common.runtime import InProcessTransport
from meterai_common.tasks import SIGN_DIGEST_TASK
from meterai_common.tls import TlsFiles
from meterai_quota.adapters.payments import DevPaymentProvider
from meterai_quota.bootstrap import SERVICE_NAME as QUOTA_SERVICE
from meterai_quota.grpc_api import QuotaServicer
from meterai_signing.cms import load_identity, sign_digest, signature_size
from meterai_signing.pki import generate_test_pki
from meterai_stamping import engine as pdf_engine
from meterai_stamping.adapters.jobs_table import JobRepository
from meterai_stamping.admission import Admission, AdmissionLimits
from meterai_stamping.batches import BatchBook
from meterai_stamping.bootstrap import (
    GRPC_THREADS,
    MAX_CONCURRENT_CALLS,
    QUEUE_WAIT_TARGET_S,
    SUBMIT_METHOD,
)
from meterai_stamping.bootstrap import SERVICE_NAME as STAMPING_SERVICE
from meterai_stamping.drain_rate import DrainRate, finishes_in
from meterai_stamping.early_refusal import EarlyRefusal
from meterai_stamping.grpc_api import StampingServicer
from meterai_stamping.handlers import Stamping, StampingConfig
from meterai_stamping.job_updates import ENDED_EVENTS, JobUpdates
from meterai_verify.bootstrap import SERVICE_NAME as VERIFY_SERVICE
from meterai_verify.grpc_api import VerificationServicer
from tests.support.channels import platform_channel
from tests.unit.stamping.samples import build_pdf

DOCUMENT = build_pdf()
PLACEMENT = stamping_pb2.Placement(page=1, rect=stamping_pb2.Rect(x0=300, y0=60, x1=440, y1=200))


@dataclass
class Reseller:
    reseller_id: str
    api_key: str

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.api_key),)


@dataclass
class ApiWorld:
    db: Engine
    stamping: Stamping
    servicer: StampingServicer
    servers: dict[str, RunningServer]
    reseller: Reseller
    other: Reseller
    tls: TlsFiles
    identity: Any
    _channels: list[grpc.Channel]

    def channel(self, service: str) -> grpc.Channel:
        channel = platform_channel(self.tls, self.servers[service].port)
        self._channels.append(channel)
        return channel

    def stamping_stub(self) -> stamping_pb2_grpc.StampingServiceStub:
        return stamping_pb2_grpc.StampingServiceStub(self.channel("stamping"))

    def quota_stub(self) -> quota_pb2_grpc.QuotaServiceStub:
        return quota_pb2_grpc.QuotaServiceStub(self.channel("quota"))

    def verify_stub(self) -> verify_pb2_grpc.VerificationServiceStub:
        return verify_pb2_grpc.VerificationServiceStub(self.channel("verify"))

    def stamped(self) -> bytes:
        """A document submitted, signed and downloaded: a genuine stamp."""
        stub = self.stamping_stub()
        job = stub.SubmitDocument(self.submit_request(), metadata=self.reseller.auth, timeout=60)
        self.sign(job.job_id)
        return b"".join(
            chunk.data
            for chunk in stub.GetStampedDocument(
                stamping_pb2.GetStampedDocumentRequest(job_id=job.job_id),
                metadata=self.reseller.auth,
                timeout=60,
            )
        )

    def submit_request(self, key: str | None = None) -> stamping_pb2.SubmitDocumentRequest:
        return stamping_pb2.SubmitDocumentRequest(
            pdf=DOCUMENT,
            placement=PLACEMENT,
            metadata=stamping_pb2.DocumentMetadata(document_type="Surat Pernyataan"),
            idempotency_key=key or str(uuid.uuid4()),
        )

    def jobs_with_key(self, key: str) -> int:
        with reading(self.db) as conn:
            return 1 if JobRepository(conn).find_by_key(self.reseller.reseller_id, key) else 0

    def sign(self, job_id: str) -> None:
        """Answer the job's sign task as a signing worker would, and finish it."""
        job = self.stamping.get(self.reseller.reseller_id, job_id)
        assert job.digest is not None and job.serial is not None
        cms = sign_digest(self.identity, bytes.fromhex(job.digest))
        self.stamping.digest_signed(job_id, job.serial, cms)


def _funded(db: Engine, name: str, units: int) -> Reseller:
    def work(conn: Any) -> Reseller:
        reseller = quota.create_reseller(conn, f"{name} {uuid.uuid4().hex[:8]}")
        order = quota.purchase(conn, reseller.id, units, f"fund-{reseller.id}")
        quota.confirm_payment(conn, order.id, f"pay-{reseller.id}", order.total_idr)
        return Reseller(reseller.id, quota.issue_api_key(conn, reseller.id))

    return run_in_transaction(db, work)


@pytest.fixture
def api_world(database_url: str, tmp_path: Path, tls_files: TlsFiles) -> Iterator[ApiWorld]:
    db = create_engine(database_url)
    pki = generate_test_pki(tmp_path / "pki")
    identity = load_identity(pki.signer_key, pki.chain)

    def resolve(key: str) -> quota.Principal:
        with reading(db) as conn:
            return quota.authenticate(conn, key)

    # The outbox is published to an in-process bus, as on the embedded platform: announcements
    # reach the watch streams; sign tasks are answered by ApiWorld.sign instead.
    bus = InProcessBus()
    bus.register_task(SIGN_DIGEST_TASK, lambda **task: None)
    transport = InProcessTransport(bus)
    relay = OutboxRelay(db, transport.dispatch, poll_interval=0.05)
    updates = JobUpdates()
    transport.broadcast_to(ENDED_EVENTS, updates.handle)
    store = DirectoryStore(tmp_path / "documents")
    stamping = Stamping(
        db,
        store,
        StampingConfig(
            verify_base_url="https://verify.example/v",
            limits=pdf_engine.Limits(),
            signature_size=lambda: signature_size(identity),
            signer_certificate=lambda: identity.certificates[0].dump(),
        ),
        committed=relay.notify,
    )
    relay.start()
    admission = Admission(stamping.backlog, stamping.inflight, AdmissionLimits())
    authenticator: Authenticator[quota.Principal] = Authenticator(resolve)
    servicer = StampingServicer(
        stamping,
        authenticator,
        admission,
        "https://verify.example/v",
        drain=DrainRate(finishes_in(db), sample_s=0.2),
        updates=updates,
        batches=BatchBook(store, stamping.submit, admission.admit),
    )
    pool = TimedThreadPool(GRPC_THREADS)
    roots = [
        certificate.public_bytes(Encoding.DER)
        for certificate in x509.load_pem_x509_certificates(pki.root_cert.read_bytes())
    ]
    servers = {
        "verify": create_server(
            "verify-test",
            "127.0.0.1",
            0,
            [
                (
                    verify_pb2_grpc.add_VerificationServiceServicer_to_server,
                    VerificationServicer(db, lambda: roots),
                )
            ],
            [VERIFY_SERVICE],
            tls=tls_files.server("verify"),
        ),
        # Composed as the stamping service composes itself: its threads, its early refusal,
        # its call limit.
        "stamping": create_server(
            "stamping-test",
            "127.0.0.1",
            0,
            [(stamping_pb2_grpc.add_StampingServiceServicer_to_server, servicer)],
            [STAMPING_SERVICE],
            tls=tls_files.server("stamping"),
            pool=pool,
            max_concurrent_rpcs=MAX_CONCURRENT_CALLS,
            interceptors=[
                EarlyRefusal(
                    SUBMIT_METHOD,
                    admission,
                    authenticator,
                    lambda principal: principal.reseller_id,
                    queue_wait=pool.oldest_wait,
                    queued=pool.queued,
                    min_queued=GRPC_THREADS,
                    wait_target_s=QUEUE_WAIT_TARGET_S,
                )
            ],
        ),
        "quota": create_server(
            "quota-test",
            "127.0.0.1",
            0,
            [
                (
                    quota_pb2_grpc.add_QuotaServiceServicer_to_server,
                    QuotaServicer(db, Authenticator(resolve), payments=DevPaymentProvider()),
                )
            ],
            [QUOTA_SERVICE],
            tls=tls_files.server("quota"),
        ),
    }
    channels: list[grpc.Channel] = []
    try:
        yield ApiWorld(
            db,
            stamping,
            servicer,
            servers,
            _funded(db, "Toko Integrasi", 1200),
            _funded(db, "Toko Lain", 50),
            tls_files,
            identity,
            channels,
        )
    finally:
        for channel in channels:
            channel.close()
        servicer.stopping.set()
        for server in servers.values():
            server.stop(0)
        relay.stop()
        bus.stop()
        db.dispose()


__all__ = ["DOCUMENT", "ApiWorld", "Reseller", "quota_pb2"]
