"""PAdES B-LT from the distributed platform: stamps that verify from the file alone after the
signer certificate has expired, and a revocation responder that goes away mid-batch.

One platform for the module (every service its own process, a Celery signing worker,
PostgreSQL and RabbitMQ of its own) with ``METERAI_SIGNATURE_LEVEL=B-LT``. Its test PKI is made
by ``meterai admin init-pki --revocation-url`` and its CRLs and OCSP answers are served by one
``meterai_signing.tsa_service`` process; timestamps come from a second one over the same PKI,
so the revocation responder can be stopped while timestamps still work (the outage is met by
finishing, not by signing). Stamped files are judged by pyHanko with the network off, pdfsig,
``qpdf --check`` and ``meterai verify``; the fault ends with every job DONE and the ledger
reconciled.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (
    REQUIRE_REVINFO,
    CertRevTrustPolicy,
    FreshnessReqType,
)

from meterai.stamping.v1 import stamping_pb2
from tests.support.corpus import CORPUS
from tests.support.faults import (
    Batch,
    StampingClient,
    Tenant,
    assert_settled,
    create_operator,
    fresh_database,
    fresh_vhost,
    provision_tenant,
    submit_batch,
    wait_for,
)
from tests.support.launch import METERAI, DistributedPlatform, free_port_block
from tests.support.tsa import TsaProcess
from tests.support.validators import nss_db_trusting, pdfsig, qpdf_check

DOCUMENT = CORPUS / "pdflatex-4-pages.pdf"
RECT = "380,60,520,200"
DONE = stamping_pb2.JOB_STATE_DONE
AFTER_USE = CertRevTrustPolicy(
    REQUIRE_REVINFO,
    freshness=timedelta(0),
    freshness_req_type=FreshnessReqType.TIME_AFTER_SIGNATURE,
)


@dataclass
class LongTerm:
    platform: DistributedPlatform
    revocation: TsaProcess
    tsa: TsaProcess
    operator_key: str

    @property
    def root_pem(self) -> Path:
        return self.platform.home / "pki" / "root-ca.pem"


@pytest.fixture(scope="module")
def long_term(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LongTerm]:
    home = tmp_path_factory.mktemp("long-term")
    port = free_port_block(1)
    with fresh_database() as database_url, fresh_vhost() as amqp_url:
        env = {**os.environ, "METERAI_HOME": str(home), "DATABASE_URL": database_url}
        init = subprocess.run(
            [METERAI, "admin", "init-pki", "--revocation-url", f"http://127.0.0.1:{port}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert init.returncode == 0, init.stdout + init.stderr
        revocation = TsaProcess(home / "pki", home / "revocation.log", port).start()
        tsa = TsaProcess(home / "pki", home / "tsa.log").start()
        platform = DistributedPlatform(home)
        try:
            platform.start(
                database_url,
                amqp_url,
                workers=1,
                extra_env={
                    "METERAI_TSA_URL": tsa.url,
                    "METERAI_SIGNATURE_LEVEL": "B-LT",
                    "METERAI_REVOCATION_TIMEOUT_MS": "1000",
                },
            )
            yield LongTerm(platform, revocation, tsa, create_operator(platform))
        finally:
            platform.stop()
            tsa.stop()
            revocation.stop()


@pytest.fixture
def tenant(long_term: LongTerm) -> Iterator[tuple[Tenant, StampingClient]]:
    if long_term.revocation.process is None or long_term.revocation.process.poll() is not None:
        long_term.revocation.restart()
    made = provision_tenant(
        long_term.platform, 20, long_term.operator_key, f"L-{uuid.uuid4().hex[:6]}"
    )
    client = StampingClient(long_term.platform, made.api_key)
    try:
        yield made, client
    finally:
        client.close()


def _certificate(path: Path) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(path.read_bytes())[2])


def _offline(
    dss: DocumentSecurityStore, root: x509.Certificate, moment: datetime, used_at: datetime
) -> ValidationContext:
    return dss.as_validation_context(
        {
            "trust_roots": [root],
            "allow_fetching": False,
            "revinfo_policy": AFTER_USE,
            "moment": moment,
            "best_signature_time": used_at,
        }
    )


class TestLongTermStamps:
    def test_a_stamp_validates_offline_after_the_signer_expired_and_in_pdfsig_and_qpdf(
        self, long_term: LongTerm, tenant: tuple[Tenant, StampingClient]
    ) -> None:
        made, _ = tenant
        platform = long_term.platform
        out = platform.home / "stamped-lt"
        result = platform.cli(
            "stamp", str(DOCUMENT), "--rect", RECT, "--out", str(out), "--json",
            api_key=made.api_key,
        )  # fmt: skip
        assert result.code == 0, result.stdout + result.stderr
        stamped = out / DOCUMENT.name
        root = _certificate(long_term.root_pem)

        reader = PdfFileReader(BytesIO(stamped.read_bytes()))
        (embedded,) = reader.embedded_regular_signatures
        online = ValidationContext(trust_roots=[root], allow_fetching=False)
        signed = validate_pdf_signature(embedded, online, ts_validation_context=online)
        assert signed.timestamp_validity is not None, "no signature timestamp"
        signed_at = signed.timestamp_validity.timestamp
        later = embedded.signer_cert.not_valid_after + timedelta(days=30)
        dss = DocumentSecurityStore.read_dss(reader)
        status = validate_pdf_signature(
            embedded,
            signer_validation_context=_offline(dss, root, signed_at, signed_at),
            ts_validation_context=_offline(dss, root, later, signed_at),
        )
        assert status.bottom_line, status.pretty_print_details()
        assert status.timestamp_validity is not None and status.timestamp_validity.trusted

        report = pdfsig(stamped, nss_db_trusting(long_term.root_pem, platform.home / "nss"))
        assert report.signatures == 1 and report.all_valid and report.all_trusted, report.output
        ok, output = qpdf_check(stamped)
        assert ok, output

        verified = platform.cli("verify", str(stamped))
        assert verified.code == 0, verified.stdout + verified.stderr
        assert "PAdES B-LT" in verified.stdout, verified.stdout


class TestRevocationOutage:
    def test_responder_stopped_during_a_batch_jobs_wait_then_finish(
        self, long_term: LongTerm, tenant: tuple[Tenant, StampingClient]
    ) -> None:
        made, client = tenant
        long_term.revocation.stop()
        result: dict[str, Batch] = {}
        thread = threading.Thread(
            target=lambda: result.setdefault("batch", submit_batch(client, 5, threads=2)),
            daemon=True,
        )
        thread.start()
        thread.join(60)
        batch = result["batch"]
        assert batch.codes() == {"OK": 5}, batch.codes()
        time.sleep(8)
        done = sum(1 for job in client.all_jobs() if job.state == DONE)
        assert done == 0, "a stamp was finished although its revocation data was unavailable"
        assert "waits for revocation data" in long_term.platform.log("stamping")
        long_term.revocation.restart()
        # The stamping service re-drives each job a minute after its last attempt.
        wait_for(
            "every job done",
            lambda: sum(1 for job in client.all_jobs() if job.state == DONE) == 5,
            180,
            every=2,
        )
        settled = assert_settled(long_term.platform, client, made, batch.accepted, timeout=60)
        assert len(settled.serials) == 5
