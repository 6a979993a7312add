"""PAdES B-LT and B-LTA: a seal that still verifies, from the file alone, after its signer
certificate has expired.

The test PKI's certificates name CRLs and OCSP responders served by the platform's TSA process
(``meterai_signing.tsa_service``, certomancer's services, started here as its own process). The
finishing step (:func:`meterai_stamping.ltv.add_long_term_data`) fetches them into the DSS;
pyHanko then validates the document with fetching off and revocation data required, at a time
after the signer certificate's ``notAfter``. pdfsig and ``qpdf --check`` still accept the file.
When the responder is down, finishing is an outage: the job waits and is re-driven, then ends
done when the responder returns, or refunded at its deadline.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import ocsp, pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (
    REQUIRE_REVINFO,
    CertRevTrustPolicy,
    FreshnessReqType,
)
from sqlalchemy import Engine

import meterai_quota as quota
from meterai_common.db import create_engine, run_in_transaction
from meterai_common.documents import DirectoryStore
from meterai_signing.cms import SigningIdentity, load_identity, sign_digest, signature_size
from meterai_signing.pki import TestPki
from meterai_signing.timestamps import HttpTimeStamper, TsaSettings
from meterai_stamping import engine as pdf_engine
from meterai_stamping.domain.jobs import DocumentFacts, JobState, Placement, SubmitDocument
from meterai_stamping.handlers import Stamping, StampingConfig
from meterai_stamping.ltv import LongTermSettings, RevocationUnavailable, add_long_term_data
from meterai_verify.levels import long_term_level
from meterai_verify.pdf_check import check_pdf
from tests.support.corpus import CORPUS
from tests.support.signed_pdfs import blank_pdf, sign_pdf
from tests.support.tsa import TsaProcess, revocation_pki, revocation_port
from tests.support.validators import nss_db_trusting, pdfsig, qpdf_check

SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"
DOCUMENT = (CORPUS / "minimal-document.pdf").read_bytes()
AFTER_USE = CertRevTrustPolicy(
    REQUIRE_REVINFO,
    freshness=timedelta(0),
    freshness_req_type=FreshnessReqType.TIME_AFTER_SIGNATURE,
)
"""Revocation data required for every certificate, and good when issued after the key signed."""


def _certificate(path: Path) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(path.read_bytes())[2])


@dataclass
class Ltv:
    pki: TestPki
    responder: TsaProcess
    identity: SigningIdentity
    stamper: HttpTimeStamper

    @property
    def root(self) -> x509.Certificate:
        return _certificate(self.pki.root_cert)

    def settings(self, level: str = "B-LT", timeout_s: float = 2.0) -> LongTermSettings:
        return LongTermSettings(
            level=level,  # type: ignore[arg-type]
            trust_roots=(self.root.dump(),),
            timeout_s=timeout_s,
            tsa_url=self.responder.url,
        )

    def after_the_signer_expired(self) -> datetime:
        signer = _certificate(self.pki.signer_cert)
        expiry: datetime = signer["tbs_certificate"]["validity"]["not_after"].native
        return expiry + timedelta(days=30)


@pytest.fixture(scope="module")
def ltv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ltv]:
    pki = revocation_pki(tmp_path_factory.mktemp("ltv-pki"))
    responder = TsaProcess(pki.directory, pki.directory / "tsa.log", revocation_port(pki))
    responder.start()
    try:
        yield Ltv(
            pki,
            responder,
            load_identity(pki.signer_key, pki.chain),
            HttpTimeStamper(TsaSettings(url=responder.url, timeout_s=5)),
        )
    finally:
        responder.stop()


@pytest.fixture(scope="module")
def bt_pdf(ltv: Ltv) -> bytes:
    return sign_pdf(
        blank_pdf(), ltv.identity, field_name=f"e-meterai-{SERIAL}", reason=SERIAL,
        timestamper=ltv.stamper,
    )  # fmt: skip


@pytest.fixture(scope="module")
def lt_pdf(ltv: Ltv, bt_pdf: bytes) -> bytes:
    return add_long_term_data(bt_pdf, ltv.settings("B-LT"))


@pytest.fixture(scope="module")
def lta_pdf(ltv: Ltv, bt_pdf: bytes) -> bytes:
    return add_long_term_data(bt_pdf, ltv.settings("B-LTA"))


def _from_the_document(
    dss: DocumentSecurityStore, root: x509.Certificate, moment: datetime, used_at: datetime
) -> ValidationContext:
    """pyHanko with the network off: certificates and revocation data from the DSS only."""
    return dss.as_validation_context(
        {
            "trust_roots": [root],
            "allow_fetching": False,
            "revinfo_policy": AFTER_USE,
            "moment": moment,
            "best_signature_time": used_at,
        }
    )


def _timestamp_time(pdf: bytes, root: x509.Certificate) -> datetime:
    (embedded,) = PdfFileReader(BytesIO(pdf)).embedded_regular_signatures
    context = ValidationContext(trust_roots=[root], allow_fetching=False)
    status = validate_pdf_signature(embedded, context, ts_validation_context=context)
    assert status.timestamp_validity is not None
    when: datetime = status.timestamp_validity.timestamp
    return when


class TestLongTermValidation:
    def test_the_dss_holds_the_chain_and_revocation_data_of_signer_intermediate_and_tsa(
        self, ltv: Ltv, lt_pdf: bytes
    ) -> None:
        dss = DocumentSecurityStore.read_dss(PdfFileReader(BytesIO(lt_pdf)))
        subjects = {cert.subject.native["common_name"] for cert in dss.load_certs()}
        assert {
            "meterai test signer",
            "meterai test intermediate CA",
            "meterai test timestamp authority",
        } <= subjects
        answered: set[int] = set()
        for reference in dss.ocsps:
            response = ocsp.OCSPResponse.load(reference.get_object().data)
            basic = response["response_bytes"]["response"].parsed
            for single in basic["tbs_response_data"]["responses"]:
                answered.add(single["cert_id"]["serial_number"].native)
        chain_serials = {
            _certificate(path).serial_number
            for path in (ltv.pki.signer_cert, ltv.pki.intermediate_cert, ltv.pki.tsa_cert)
        }
        assert chain_serials <= answered, "an OCSP answer is missing from the DSS"

    def test_b_lt_validates_offline_after_the_signer_certificate_expired(
        self, ltv: Ltv, lt_pdf: bytes
    ) -> None:
        later = ltv.after_the_signer_expired()
        signed_at = _timestamp_time(lt_pdf, ltv.root)
        reader = PdfFileReader(BytesIO(lt_pdf))
        (embedded,) = reader.embedded_regular_signatures
        dss = DocumentSecurityStore.read_dss(reader)
        status = validate_pdf_signature(
            embedded,
            signer_validation_context=_from_the_document(dss, ltv.root, signed_at, signed_at),
            ts_validation_context=_from_the_document(dss, ltv.root, later, signed_at),
        )
        assert status.bottom_line, status.pretty_print_details()
        assert status.timestamp_validity is not None
        assert status.timestamp_validity.valid and status.timestamp_validity.trusted
        assert status.modification_level is ModificationLevel.LTA_UPDATES
        assert embedded.signer_cert.not_valid_after < later  # truly after expiry
        level = _level(embedded, ltv.root, later)
        assert level == "B-LT"

    def test_without_the_dss_the_same_offline_validation_fails(
        self, ltv: Ltv, bt_pdf: bytes
    ) -> None:
        """The control: revocation data really comes from the document."""
        signed_at = _timestamp_time(bt_pdf, ltv.root)
        (embedded,) = PdfFileReader(BytesIO(bt_pdf)).embedded_regular_signatures
        empty = DocumentSecurityStore(writer=None)
        status = validate_pdf_signature(
            embedded,
            signer_validation_context=_from_the_document(empty, ltv.root, signed_at, signed_at),
            ts_validation_context=_from_the_document(
                empty, ltv.root, ltv.after_the_signer_expired(), signed_at
            ),
        )
        assert not status.bottom_line
        assert _level(embedded, ltv.root, ltv.after_the_signer_expired()) == "B-T"

    def test_b_lta_document_timestamp_validates_offline_and_covers_the_signature(
        self, ltv: Ltv, lta_pdf: bytes
    ) -> None:
        later = ltv.after_the_signer_expired()
        reader = PdfFileReader(BytesIO(lta_pdf))
        (embedded,) = reader.embedded_regular_signatures
        (archive,) = reader.embedded_timestamp_signatures
        assert archive.signed_revision > embedded.signed_revision
        dss = DocumentSecurityStore.read_dss(reader)
        archived_at = archive.self_reported_timestamp
        assert archived_at is not None
        archived = validate_pdf_timestamp(
            archive, validation_context=_from_the_document(dss, ltv.root, later, archived_at)
        )
        assert archived.valid and archived.trusted and archived.intact, archived
        signed_at = _timestamp_time(lta_pdf, ltv.root)
        status = validate_pdf_signature(
            embedded,
            signer_validation_context=_from_the_document(dss, ltv.root, signed_at, signed_at),
            ts_validation_context=_from_the_document(dss, ltv.root, archived.timestamp, signed_at),
        )
        assert status.bottom_line, status.pretty_print_details()
        assert status.modification_level is ModificationLevel.LTA_UPDATES
        assert _level(embedded, ltv.root, later) == "B-LTA"

    @pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
    def test_pdfsig_and_qpdf_still_accept_the_document(
        self, ltv: Ltv, lt_pdf: bytes, lta_pdf: bytes, level: str, tmp_path: Path
    ) -> None:
        path = tmp_path / f"{level}.pdf"
        path.write_bytes(lt_pdf if level == "B-LT" else lta_pdf)
        report = pdfsig(path, nss_db_trusting(ltv.pki.root_cert, tmp_path / "nss"))
        # The seal validates and is trusted; poppler does not validate document timestamps
        # (it lists the B-LTA one as "not yet verified"), which pyHanko does above.
        assert report.signatures == (1 if level == "B-LT" else 2), report.output
        assert report.output.count("Signature is Valid.") == 1, report.output
        assert report.output.count("Certificate is Trusted.") == 1, report.output
        ok, output = qpdf_check(path)
        assert ok, output

    def test_verification_reports_the_level_reached(
        self, ltv: Ltv, bt_pdf: bytes, lt_pdf: bytes, lta_pdf: bytes
    ) -> None:
        roots = [ltv.root.dump()]
        levels = [check_pdf(pdf, roots).signatures[0].level for pdf in (bt_pdf, lt_pdf, lta_pdf)]
        assert levels == ["B-T", "B-LT", "B-LTA"]


def _level(embedded: object, root: x509.Certificate, at: datetime) -> str:
    import asyncio

    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    assert isinstance(embedded, EmbeddedPdfSignature)
    context = ValidationContext(trust_roots=[root], allow_fetching=False)
    status = validate_pdf_signature(embedded, context, ts_validation_context=context)
    return asyncio.run(long_term_level(embedded, status, [root], at=at))


class TestResponderOutage:
    def test_a_stopped_responder_is_an_outage_reported_within_the_timeout(
        self, ltv: Ltv, bt_pdf: bytes
    ) -> None:
        ltv.responder.stop()
        try:
            began = time.monotonic()
            with pytest.raises(RevocationUnavailable):
                add_long_term_data(bt_pdf, ltv.settings("B-LT", timeout_s=1.0))
            assert time.monotonic() - began < 10
        finally:
            ltv.responder.restart()


@dataclass
class Finishing:
    db: Engine
    stamping: Stamping
    clock: list[datetime]
    owner: str
    level: str

    def submit(self) -> str:
        return self.stamping.submit(
            SubmitDocument(
                reseller_id=self.owner,
                owner_id=self.owner,
                pdf=DOCUMENT,
                placement=Placement(1, 300, 60, 440, 200),
                facts=DocumentFacts("Surat Pernyataan"),
                idempotency_key=str(uuid.uuid4()),
            )
        ).job_id

    def state(self, job_id: str) -> JobState:
        return self.stamping.get(self.owner, job_id).state

    def balance(self) -> quota.Balance:
        with self.db.connect() as conn:
            return quota.balance(conn, self.owner)


@pytest.fixture(params=["B-LT", "B-LTA"])
def finishing(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, ltv: Ltv
) -> Iterator[Finishing]:
    level: str = request.param
    db = create_engine(database_url)
    clock = [datetime.now(UTC)]
    bound = ltv.stamper.token_size_bound
    stamping = Stamping(
        db,
        DirectoryStore(tmp_path / "documents"),
        StampingConfig(
            verify_base_url="https://verify.example/v",
            limits=pdf_engine.Limits(),
            signature_size=lambda: signature_size(ltv.identity, bound),
            signer_certificate=lambda: ltv.identity.certificates[0].dump(),
            # A stopped responder refuses at once; the time-out only bounds a slow answer, which
            # a loaded test machine must not turn into an outage.
            long_term=lambda pdf: add_long_term_data(pdf, ltv.settings(level, timeout_s=10.0)),
            redrive_after=timedelta(seconds=60),
            job_deadline=timedelta(minutes=10),
        ),
        clock=lambda: clock[0],
    )

    def fund(conn: object) -> str:
        reseller = quota.create_reseller(conn, f"ltv test {uuid.uuid4().hex[:8]}")  # type: ignore[arg-type]
        order = quota.purchase(conn, reseller.id, 2, "fund")  # type: ignore[arg-type]
        quota.confirm_payment(conn, order.id, f"pay-{reseller.id}", order.total_idr)  # type: ignore[arg-type]
        return reseller.id

    owner = run_in_transaction(db, fund)
    try:
        yield Finishing(db, stamping, clock, owner, level)
    finally:
        if ltv.responder.process is None or ltv.responder.process.poll() is not None:
            ltv.responder.restart()
        db.dispose()


def _answer(world: Finishing, ltv: Ltv, job_id: str) -> None:
    """What the signing tier sends back: a B-T signature over the job's digest."""
    job = world.stamping.get(world.owner, job_id)
    assert job.serial and job.digest
    cms = sign_digest(ltv.identity, bytes.fromhex(job.digest), ltv.stamper)
    world.stamping.digest_signed(job_id, job.serial, cms)


class TestFinishingThroughAnOutage:
    def test_the_job_waits_is_redriven_and_finishes_when_the_responder_returns(
        self, finishing: Finishing, ltv: Ltv
    ) -> None:
        job_id = finishing.submit()
        job = finishing.stamping.get(finishing.owner, job_id)
        assert job.serial and job.digest
        cms = sign_digest(ltv.identity, bytes.fromhex(job.digest), ltv.stamper)
        ltv.responder.stop()
        finishing.stamping.digest_signed(job_id, job.serial, cms)
        assert finishing.state(job_id) is JobState.PREPARED  # waiting, not failed
        assert finishing.balance().held == 1

        finishing.clock[0] += timedelta(seconds=61)
        assert finishing.stamping.redrive_stuck() >= 1  # signed again, like a TSA outage
        ltv.responder.restart()
        _answer(finishing, ltv, job_id)
        assert finishing.state(job_id) is JobState.DONE
        stamped = b"".join(finishing.stamping.stamped_document(finishing.owner, job_id))
        assert (
            hashlib.sha256(stamped[: len(DOCUMENT)]).digest() == hashlib.sha256(DOCUMENT).digest()
        )
        assert check_pdf(stamped, [ltv.root.dump()]).signatures[0].level == finishing.level
        balance = finishing.balance()
        assert (balance.held, balance.consumed) == (0, 1)

    def test_a_responder_down_past_the_deadline_fails_the_job_and_refunds(
        self, finishing: Finishing, ltv: Ltv
    ) -> None:
        job_id = finishing.submit()
        ltv.responder.stop()
        job = finishing.stamping.get(finishing.owner, job_id)
        assert job.serial and job.digest
        # The signature itself was made while the TSA was up; only finishing meets the outage.
        ltv.responder.restart()
        cms = sign_digest(ltv.identity, bytes.fromhex(job.digest), ltv.stamper)
        ltv.responder.stop()
        finishing.stamping.digest_signed(job_id, job.serial, cms)
        assert finishing.state(job_id) is JobState.PREPARED
        finishing.clock[0] += timedelta(minutes=11)
        # Each round fails at most 500 expired jobs, oldest first, and the PostgreSQL database
        # is shared with other tests' leftovers: run rounds until this job's turn came.
        for _ in range(50):
            finishing.stamping.redrive_stuck()
            if finishing.state(job_id) is not JobState.PREPARED:
                break
        ended = finishing.stamping.get(finishing.owner, job_id)
        assert ended.state is JobState.FAILED and ended.refunded
        balance = finishing.balance()
        assert (balance.available, balance.held, balance.consumed) == (2, 0, 0)
        with finishing.db.connect() as conn:
            assert quota.reconcile(conn).ok
