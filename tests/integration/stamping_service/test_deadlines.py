"""A call whose caller has given up commits nothing: a submission or a quota purchase whose
deadline passes (or that is cancelled) before its commit charges nothing, leaves no job, order
or document behind, over a real gRPC channel on SQLite and PostgreSQL.

A hook just before the check holds the call there, so the deadline surely passes with the call
inside its transaction: the check, not a slow network, is what the tests prove. The same hook
with a generous deadline charges, so the tests can fail.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

import meterai_quota as quota
from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai_cli.client import Platform
from meterai_common.auth import Authenticator
from meterai_common.config import Ports
from meterai_common.db import create_engine, reading, run_in_transaction
from meterai_common.documents import DirectoryStore
from meterai_common.grpc_server import RunningServer, create_server
from meterai_common.tls import TlsFiles
from meterai_quota.adapters.payments import DevPaymentProvider
from meterai_quota.adapters.tables import orders
from meterai_quota.grpc_api import QuotaServicer
from meterai_signing.cms import load_identity, signature_size
from meterai_signing.pki import generate_test_pki
from meterai_stamping import engine as pdf_engine
from meterai_stamping.adapters.jobs_table import jobs_table as jobs
from meterai_stamping.admission import Admission, AdmissionLimits
from meterai_stamping.grpc_api import StampingServicer
from meterai_stamping.handlers import Stamping, StampingConfig
from tests.unit.stamping.samples import build_pdf

DOCUMENT = build_pdf()


@dataclass
class Hold:
    """The test hook: parks each call right before its deadline check for ``seconds``."""

    seconds: float = 0.0
    entered: threading.Event = field(default_factory=threading.Event)
    left: threading.Event = field(default_factory=threading.Event)

    def __call__(self) -> None:
        self.entered.set()
        time.sleep(self.seconds)
        self.left.set()


@dataclass
class World:
    db: Engine
    documents: Path
    hold: Hold
    reseller_id: str
    api_key: str
    stamping: stamping_pb2_grpc.StampingServiceStub
    quota: quota_pb2_grpc.QuotaServiceStub

    def submit(self, timeout: float) -> Any:
        return self.stamping.SubmitDocument.future(
            stamping_pb2.SubmitDocumentRequest(
                pdf=DOCUMENT,
                placement=stamping_pb2.Placement(
                    page=1, rect=stamping_pb2.Rect(x0=300, y0=60, x1=440, y1=200)
                ),
                metadata=stamping_pb2.DocumentMetadata(document_type="Surat Pernyataan"),
                idempotency_key=str(uuid.uuid4()),
            ),
            metadata=(("x-api-key", self.api_key),),
            timeout=timeout,
        )

    def purchase(self, timeout: float) -> Any:
        return self.quota.PurchaseQuota.future(
            quota_pb2.PurchaseQuotaRequest(quantity=5, idempotency_key=str(uuid.uuid4())),
            metadata=(("x-api-key", self.api_key),),
            timeout=timeout,
        )

    def balance(self) -> quota.Balance:
        with self.db.connect() as conn:
            return quota.balance(conn, self.reseller_id)

    def count(self, table: sa.Table) -> int:
        with self.db.connect() as conn:
            return int(
                conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.reseller_id == self.reseller_id)
                )
                or 0
            )

    def settled(self) -> None:
        """Wait until the held call has passed its check and rolled back or committed."""
        assert self.hold.left.wait(10), "the call never reached its commit"
        time.sleep(0.3)


def _servers(db: Engine, tmp_path: Path, hold: Hold, tls: TlsFiles) -> list[RunningServer]:
    pki = generate_test_pki(tmp_path / "pki")
    identity = load_identity(pki.signer_key, pki.chain)

    def resolve(key: str) -> quota.Principal:
        with reading(db) as conn:
            return quota.authenticate(conn, key)

    stamping = Stamping(
        db,
        DirectoryStore(tmp_path / "documents"),
        StampingConfig(
            verify_base_url="https://verify.example/v",
            limits=pdf_engine.Limits(),
            signature_size=lambda: signature_size(identity),
            signer_certificate=lambda: identity.certificates[0].dump(),
        ),
    )
    admission = Admission(lambda: 0, lambda reseller: 0, AdmissionLimits())
    stamping_servicer = StampingServicer(
        stamping, Authenticator(resolve), admission, "https://verify.example/v", before_commit=hold
    )
    quota_servicer = QuotaServicer(
        db, Authenticator(resolve), payments=DevPaymentProvider(), before_commit=hold
    )
    return [
        create_server(
            "stamping-test",
            "127.0.0.1",
            0,
            [(stamping_pb2_grpc.add_StampingServiceServicer_to_server, stamping_servicer)],
            [],
            tls=tls.server("stamping"),
        ),
        create_server(
            "quota-test",
            "127.0.0.1",
            0,
            [(quota_pb2_grpc.add_QuotaServiceServicer_to_server, quota_servicer)],
            [],
            tls=tls.server("quota"),
        ),
    ]


@pytest.fixture
def world(database_url: str, tmp_path: Path, tls_files: TlsFiles) -> Iterator[World]:
    db = create_engine(database_url)
    hold = Hold()
    stamping_server, quota_server = _servers(db, tmp_path, hold, tls_files)

    def funded(conn: Any) -> tuple[str, str]:
        reseller = quota.create_reseller(conn, f"deadline test {uuid.uuid4().hex[:8]}")
        order = quota.purchase(conn, reseller.id, 2, "fund")
        quota.confirm_payment(conn, order.id, f"pay-{reseller.id}", order.total_idr)
        return reseller.id, quota.issue_api_key(conn, reseller.id)

    reseller_id, api_key = run_in_transaction(db, funded)
    client = Platform(
        "127.0.0.1",
        Ports(quota_server.port, stamping_server.port),
        api_key,
        tls=tls_files.client(),
    )
    try:
        yield World(
            db,
            tmp_path / "documents",
            hold,
            reseller_id,
            api_key,
            stamping_pb2_grpc.StampingServiceStub(client.channel("stamping")),
            quota_pb2_grpc.QuotaServiceStub(client.channel("quota")),
        )
    finally:
        client.close()
        stamping_server.stop(0)
        quota_server.stop(0)
        db.dispose()


def _fails_with(call: Any, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        call.result()
    assert failed.value.code() is code


def _documents(world: World) -> list[Path]:
    return [path for path in world.documents.rglob("*") if path.is_file()]


def test_a_submission_whose_deadline_passes_before_commit_charges_nothing(world: World) -> None:
    world.hold.seconds = 0.6
    _fails_with(world.submit(timeout=0.3), grpc.StatusCode.DEADLINE_EXCEEDED)
    world.settled()
    balance = world.balance()
    assert (balance.available, balance.held) == (2, 0)
    assert world.count(jobs) == 0
    assert _documents(world) == []


def test_a_submission_with_a_1_ms_deadline_charges_nothing(world: World) -> None:
    _fails_with(world.submit(timeout=0.001), grpc.StatusCode.DEADLINE_EXCEEDED)
    time.sleep(1.0)  # whatever the server still does with the call
    assert (world.balance().available, world.count(jobs)) == (2, 0)
    assert _documents(world) == []


def test_a_cancelled_submission_charges_nothing(world: World) -> None:
    world.hold.seconds = 0.6
    call = world.submit(timeout=30)
    assert world.hold.entered.wait(10)
    call.cancel()
    world.settled()
    assert (world.balance().available, world.count(jobs)) == (2, 0)


def test_a_held_submission_within_its_deadline_is_charged(world: World) -> None:
    world.hold.seconds = 0.3
    job = world.submit(timeout=30).result()
    assert job.state == stamping_pb2.JOB_STATE_PREPARED
    assert (world.balance().held, world.count(jobs)) == (1, 1)


def test_a_purchase_whose_deadline_passes_before_commit_buys_nothing(world: World) -> None:
    world.hold.seconds = 0.6
    _fails_with(world.purchase(timeout=0.3), grpc.StatusCode.DEADLINE_EXCEEDED)
    world.settled()
    assert world.count(orders) == 1  # the funding order only
    assert world.balance().purchased == 2


def test_a_held_purchase_within_its_deadline_is_bought(world: World) -> None:
    world.hold.seconds = 0.3
    order = world.purchase(timeout=30).result()
    assert order.state == quota_pb2.ORDER_STATE_PAID
    assert world.balance().purchased == 7
