"""PAdES B-T: every signature carries an RFC 3161 timestamp from the platform's own TSA process.

The authority is ``meterai_signing.tsa_service`` (certomancer's responder) in its own process;
faults come from :class:`~tests.support.tsa.TsaFaults`, a relay in front of it that can be
slow, answer garbage or be down. Documents are judged by pyHanko and pdfsig.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from meterai.events.v1 import events_pb2
from meterai_signing.cms import SigningIdentity, load_identity, sign_digest, signature_size
from meterai_signing.errors import TimestampError, TimestampUnavailable
from meterai_signing.job_check import OneByOne
from meterai_signing.pki import TestPki
from meterai_signing.signer import Signer
from meterai_signing.timestamps import HttpTimeStamper, TsaSettings
from meterai_stamping.answer_check import ForgedAnswer, signature_timestamp_time
from tests.support.signed_pdfs import blank_pdf, sign_pdf
from tests.support.tsa import TsaFaults, TsaProcess
from tests.support.validators import nss_db_trusting, pdfsig, qpdf_check

SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"
JOB = "7f0c1c9e-3c1a-4c1e-9d8e-1f2a3b4c5d6e"


@pytest.fixture(scope="module")
def identity(tsa_pki: TestPki) -> SigningIdentity:
    return load_identity(tsa_pki.signer_key, tsa_pki.chain)


@pytest.fixture(scope="module")
def stamper(tsa: TsaProcess) -> HttpTimeStamper:
    return HttpTimeStamper(TsaSettings(url=tsa.url, timeout_s=5))


@pytest.fixture
def faults(tsa: TsaProcess) -> Iterator[TsaFaults]:
    relay = TsaFaults(tsa.url, slow_s=2.0).start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture(scope="module")
def bt_pdf(identity: SigningIdentity, stamper: HttpTimeStamper) -> bytes:
    return sign_pdf(
        blank_pdf(), identity, field_name=f"e-meterai-{SERIAL}", reason=SERIAL, timestamper=stamper
    )


def _context(pki: TestPki) -> ValidationContext:
    return ValidationContext(
        trust_roots=[load_cert_from_pemder(str(pki.root_cert))], allow_fetching=False
    )


class TestTimestampedSignature:
    def test_pyhanko_finds_the_signature_timestamp_valid_and_trusted(
        self, bt_pdf: bytes, tsa_pki: TestPki
    ) -> None:
        (embedded,) = PdfFileReader(BytesIO(bt_pdf)).embedded_signatures
        status = validate_pdf_signature(
            embedded, _context(tsa_pki), ts_validation_context=_context(tsa_pki)
        )
        assert status.bottom_line
        stamp = status.timestamp_validity
        assert stamp is not None, "no signature timestamp: the signature is B-B, not B-T"
        assert stamp.intact and stamp.valid and stamp.trusted
        assert abs((stamp.timestamp - embedded.self_reported_timestamp).total_seconds()) < 120

    def test_pdfsig_and_qpdf_accept_it(
        self, bt_pdf: bytes, tsa_pki: TestPki, tmp_path: Path
    ) -> None:
        pdf = tmp_path / "bt.pdf"
        pdf.write_bytes(bt_pdf)
        report = pdfsig(pdf, nss_db_trusting(tsa_pki.root_cert, tmp_path / "nss"))
        assert report.all_valid and report.all_trusted, report.text
        ok, output = qpdf_check(pdf)
        assert ok, output

    def test_the_placeholder_bound_holds_for_every_token(
        self, identity: SigningIdentity, stamper: HttpTimeStamper
    ) -> None:
        bound = signature_size(identity, stamper.token_size_bound)
        sizes = [
            len(sign_digest(identity, hashlib.sha256(bytes([n])).digest(), stamper))
            for n in range(20)
        ]
        assert max(sizes) <= bound
        assert bound - max(sizes) >= 512  # the margin is real, not a coincidence of one token

    def test_a_token_larger_than_the_bound_is_refused(
        self, identity: SigningIdentity, tsa: TsaProcess
    ) -> None:
        tight = HttpTimeStamper(TsaSettings(url=tsa.url, token_bound=1000))
        with pytest.raises(TimestampError, match="more than the 1000 reserved"):
            sign_digest(identity, bytes(32), tight)


class TestVerificationReportsTheLevel:
    def test_a_timestamped_signature_is_b_t_with_its_proven_time(
        self, bt_pdf: bytes, tsa_pki: TestPki
    ) -> None:
        from asn1crypto import pem

        from meterai_verify.pdf_check import check_pdf

        _, _, root = pem.unarmor(tsa_pki.root_cert.read_bytes())
        (seal,) = check_pdf(bt_pdf, [root]).signatures
        assert seal.ok and seal.level == "B-T"
        assert seal.timestamp_time is not None and seal.signing_time is not None
        assert abs((seal.timestamp_time - seal.signing_time).total_seconds()) < 120

    def test_a_signature_without_timestamp_is_b_b(
        self, identity: SigningIdentity, tsa_pki: TestPki
    ) -> None:
        from asn1crypto import pem

        from meterai_verify.pdf_check import check_pdf

        _, _, root = pem.unarmor(tsa_pki.root_cert.read_bytes())
        bb = sign_pdf(blank_pdf(), identity, field_name=f"e-meterai-{SERIAL}", reason=SERIAL)
        (seal,) = check_pdf(bb, [root]).signatures
        assert seal.ok and seal.level == "B-B" and seal.timestamp_time is None


class TestFinishingReadsTheTrustedTime:
    """Finishing records, with the serial, the time the authority certified in the seal's
    signature timestamp (``genTime``); the public serial lookup shows it."""

    def test_it_is_the_time_the_authority_certified_as_pyhanko_reads_it(
        self, bt_pdf: bytes, tsa_pki: TestPki
    ) -> None:
        (embedded,) = PdfFileReader(BytesIO(bt_pdf)).embedded_signatures
        answer = cms.ContentInfo({"content_type": "signed_data", "content": embedded.signed_data})
        status = validate_pdf_signature(
            embedded, _context(tsa_pki), ts_validation_context=_context(tsa_pki)
        )
        assert status.timestamp_validity is not None
        assert signature_timestamp_time(answer.dump()) == status.timestamp_validity.timestamp

    def test_it_lies_between_asking_and_answering_in_utc(
        self, identity: SigningIdentity, stamper: HttpTimeStamper
    ) -> None:
        before = datetime.now(UTC)
        answer = sign_digest(identity, hashlib.sha256(b"trusted time").digest(), stamper)
        after = datetime.now(UTC)
        trusted = signature_timestamp_time(answer)
        assert trusted is not None and trusted.utcoffset() == timedelta(0)
        # The authority may round its clock down to the second it reports.
        assert before.replace(microsecond=0) <= trusted <= after

    def test_a_b_b_answer_has_none(self, identity: SigningIdentity) -> None:
        assert signature_timestamp_time(sign_digest(identity, bytes(32))) is None

    def test_a_token_lifted_from_another_answer_is_refused_as_forged(
        self, identity: SigningIdentity, stamper: HttpTimeStamper
    ) -> None:
        donor = cms.ContentInfo.load(sign_digest(identity, hashlib.sha256(b"a").digest(), stamper))
        taker = cms.ContentInfo.load(sign_digest(identity, hashlib.sha256(b"b").digest()))
        lifted = donor["content"]["signer_infos"][0]["unsigned_attrs"]
        taker["content"]["signer_infos"][0]["unsigned_attrs"] = lifted.copy()
        with pytest.raises(ForgedAnswer, match="over another signature"):
            signature_timestamp_time(taker.dump(force=True))


class TestUnavailableOrBrokenAuthority:
    def test_garbage_is_a_final_error(self, identity: SigningIdentity, faults: TsaFaults) -> None:
        faults.mode = "garbage"
        stamper = HttpTimeStamper(TsaSettings(url=faults.url, token_bound=8000))
        with pytest.raises(TimestampError, match="garbage"):
            sign_digest(identity, bytes(32), stamper)

    def test_a_token_for_another_request_is_refused(
        self, identity: SigningIdentity, tsa: TsaProcess
    ) -> None:
        import urllib.request

        from meterai_signing.timestamps import check_response, timestamp_request

        imprint = hashlib.sha256(b"one").digest()
        request = urllib.request.Request(
            tsa.url,
            data=timestamp_request(imprint, 12345),
            headers={"Content-Type": "application/timestamp-query"},
        )
        body = urllib.request.urlopen(request, timeout=5).read()
        assert check_response(body, imprint, 12345)
        with pytest.raises(TimestampError, match="another message imprint"):
            check_response(body, hashlib.sha256(b"two").digest(), 12345)
        with pytest.raises(TimestampError, match="nonce"):
            check_response(body, imprint, 54321)

    def test_a_stopped_authority_is_unavailable_at_once(
        self, identity: SigningIdentity, faults: TsaFaults
    ) -> None:
        faults.mode = "down"
        stamper = HttpTimeStamper(TsaSettings(url=faults.url, token_bound=8000))
        with pytest.raises(TimestampUnavailable):
            sign_digest(identity, bytes(32), stamper)

    def test_a_slow_authority_is_unavailable_after_the_timeout_not_a_hang(
        self, identity: SigningIdentity, faults: TsaFaults
    ) -> None:
        faults.mode = "slow"
        stamper = HttpTimeStamper(TsaSettings(url=faults.url, timeout_s=0.5, token_bound=8000))
        started = time.monotonic()
        with pytest.raises(TimestampUnavailable):
            sign_digest(identity, bytes(32), stamper)
        assert time.monotonic() - started < 1.5

    def test_a_slow_authority_within_the_timeout_still_stamps(
        self, identity: SigningIdentity, faults: TsaFaults
    ) -> None:
        faults.mode, faults.slow_s = "slow", 0.3
        stamper = HttpTimeStamper(TsaSettings(url=faults.url, timeout_s=5, token_bound=8000))
        assert len(sign_digest(identity, bytes(32), stamper)) > 3000


class _Sink:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        self.published.append((routing_key, body))


class _EveryJobCommitted(OneByOne):
    """These tests are about the authority's answers, not about which jobs may be signed."""

    def awaiting(self, job_id: str, serial: str, digest_hex: str) -> bool:
        return True


class TestSignerAnswers:
    def test_garbage_fails_the_job_with_no_signature(
        self, identity: SigningIdentity, faults: TsaFaults
    ) -> None:
        faults.mode = "garbage"
        sink = _Sink()
        signed: list[object] = []
        signer = Signer(
            identity,
            _EveryJobCommitted(),
            events=lambda: sink,
            timestamper=HttpTimeStamper(TsaSettings(url=faults.url, token_bound=8000)),
            signed=signed.append,
        )
        signer.sign_and_announce(JOB, SERIAL, bytes(32).hex())
        ((routing_key, body),) = sink.published
        assert routing_key == "SigningFailed"
        assert "garbage" in events_pb2.SigningFailed.FromString(body).reason
        assert signed == []  # nothing for the audit trail: no signature left the signer

    def test_an_authority_that_stays_down_leaves_the_job_waiting(
        self, identity: SigningIdentity, faults: TsaFaults
    ) -> None:
        faults.mode = "down"
        sink = _Sink()
        signer = Signer(
            identity,
            _EveryJobCommitted(),
            events=lambda: sink,
            timestamper=HttpTimeStamper(TsaSettings(url=faults.url, token_bound=8000)),
            timestamp_attempts=2,
        )
        with pytest.raises(TimestampUnavailable):
            signer.sign_and_announce(JOB, SERIAL, bytes(32).hex())
        assert sink.published == []  # no answer: the task is delivered again, the job waits

    def test_an_authority_back_within_the_attempts_answers_signed(
        self, identity: SigningIdentity, faults: TsaFaults
    ) -> None:
        faults.mode = "down"
        sink = _Sink()
        signer = Signer(
            identity,
            _EveryJobCommitted(),
            events=lambda: sink,
            timestamper=HttpTimeStamper(TsaSettings(url=faults.url, token_bound=8000)),
            timestamp_attempts=3,
        )

        def back() -> None:
            time.sleep(0.5)
            faults.mode = "relay"

        import threading

        threading.Thread(target=back).start()
        signer.sign_and_announce(JOB, SERIAL, bytes(32).hex())
        ((routing_key, _),) = sink.published
        assert routing_key == "DigestSigned"
        assert signer.signature_size > 3000
