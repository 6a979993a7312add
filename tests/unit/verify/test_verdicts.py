"""The verdict on a seal: genuine only when signed, issued for that digest and unchanged since.

Documents are signed as the platform signs (pyHanko's flow with our CMS) and then changed the
ways a forger would; the ledger is a dictionary of facts, so every rule is seen on its own.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from meterai_signing.cms import SigningIdentity
from meterai_signing.pki import TestPki, generate_test_pki
from meterai_verify.changes import Change
from meterai_verify.pdf_check import check_pdf
from meterai_verify.serial_facts import SerialFacts
from meterai_verify.verdicts import Reason, Verdict, judge_document, judge_serial
from tests.support import altered_pdfs, signed_pdfs

SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"


@pytest.fixture(scope="module")
def stamped(identity: SigningIdentity) -> bytes:
    return signed_pdfs.sign_pdf(
        altered_pdfs.form_pdf(),
        identity,
        field_name=f"e-meterai-{SERIAL}",
        reason=f"e-Meterai {SERIAL}",
    )


@pytest.fixture(scope="module")
def other_party(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("other-party"), key_type="ecdsa-p256")


@pytest.fixture(scope="module")
def issued(stamped: bytes, root_der: bytes) -> SerialFacts:
    """The ledger's facts for SERIAL, issued for the digest the seal signed."""
    digest = check_pdf(stamped, [root_der]).signatures[0].message_digest
    return SerialFacts(
        serial=SERIAL,
        status="ISSUED",
        stamped_at=datetime(2026, 12, 1, tzinfo=UTC),
        document_digest=digest,
        document_type="Surat Lamaran",
        value_idr=10_000,
        reseller_name="Toko Contoh",
    )


def judge(pdf: bytes, root_der: bytes, facts: SerialFacts):  # type: ignore[no-untyped-def]
    return judge_document(check_pdf(pdf, [root_der]), lambda serial: facts)


class TestUntouchedSeal:
    def test_is_genuine_with_nothing_changed(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts
    ) -> None:
        verdict = judge(stamped, root_der, issued)
        assert verdict.verdict is Verdict.GENUINE
        (seal,) = verdict.seals
        assert seal.changes == ()
        assert seal.reasons == ()
        assert seal.serial == SERIAL

    def test_its_stamped_revision_is_the_whole_file(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts
    ) -> None:
        (seal,) = judge(stamped, root_der, issued).seals
        assert seal.signed_revision_end == len(stamped)


class TestChangesAfterTheSeal:
    def test_a_filled_form_value_makes_it_modified(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts
    ) -> None:
        verdict = judge(altered_pdfs.fill_form_field(stamped), root_der, issued)
        assert verdict.verdict is Verdict.MODIFIED
        assert verdict.seals[0].changes == (Change.FORM_FILLING,)
        assert verdict.seals[0].reasons == (Reason.CHANGED_AFTER_STAMPING,)

    def test_a_content_change_makes_it_modified(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts
    ) -> None:
        verdict = judge(altered_pdfs.change_content(stamped), root_der, issued)
        assert verdict.verdict is Verdict.MODIFIED
        assert Change.CONTENT in verdict.seals[0].changes

    def test_an_added_annotation_makes_it_modified(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts
    ) -> None:
        verdict = judge(altered_pdfs.add_annotation(stamped), root_der, issued)
        assert verdict.verdict is Verdict.MODIFIED
        assert verdict.seals[0].changes != ()

    def test_a_later_invisible_signature_by_another_party_is_allowed_and_reported(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts, other_party: TestPki
    ) -> None:
        later = altered_pdfs.sign_later(stamped, other_party.signer_key, other_party.signer_cert)
        verdict = judge(later, root_der, issued)
        assert verdict.verdict is Verdict.GENUINE
        assert verdict.seals[0].changes == (Change.SIGNATURES,)
        assert verdict.other_signatures == 1

    def test_a_later_signature_covering_the_page_makes_it_modified(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts, other_party: TestPki
    ) -> None:
        later = altered_pdfs.sign_later(
            stamped, other_party.signer_key, other_party.signer_cert, box=(0, 0, 595, 842)
        )
        verdict = judge(later, root_der, issued)
        assert verdict.verdict is Verdict.MODIFIED
        assert verdict.seals[0].changes == (Change.ANNOTATIONS, Change.SIGNATURES)

    def test_the_stamped_revision_is_the_exact_prefix_that_was_signed(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts
    ) -> None:
        changed = altered_pdfs.fill_form_field(stamped)
        (seal,) = judge(changed, root_der, issued).seals
        revision = changed[: seal.signed_revision_end]
        assert hashlib.sha256(revision).digest() == hashlib.sha256(stamped).digest()


class TestTheLedgerDecides:
    def test_a_serial_issued_for_another_digest_is_not_genuine(
        self, stamped: bytes, root_der: bytes, issued: SerialFacts
    ) -> None:
        other = SerialFacts(**{**issued.__dict__, "document_digest": "00" * 32})
        verdict = judge(stamped, root_der, other)
        assert verdict.verdict is Verdict.NOT_GENUINE
        assert verdict.seals[0].reasons == (Reason.DIGEST_MISMATCH,)

    @pytest.mark.parametrize("status", ["UNKNOWN", "VOID", "PENDING"])
    def test_a_serial_not_issued_is_not_genuine(
        self, stamped: bytes, root_der: bytes, status: str
    ) -> None:
        verdict = judge(stamped, root_der, SerialFacts(serial=SERIAL, status=status))
        assert verdict.verdict is Verdict.NOT_GENUINE
        assert Reason.SERIAL_NOT_ISSUED in verdict.seals[0].reasons

    def test_a_signer_outside_the_roots_is_not_genuine(
        self, stamped: bytes, other_root_der: bytes, issued: SerialFacts
    ) -> None:
        verdict = judge(stamped, other_root_der, issued)
        assert verdict.verdict is Verdict.NOT_GENUINE
        assert Reason.UNTRUSTED_SIGNER in verdict.seals[0].reasons

    def test_a_document_without_a_seal_is_not_genuine(
        self, root_der: bytes, issued: SerialFacts
    ) -> None:
        verdict = judge(signed_pdfs.blank_pdf(), root_der, issued)
        assert verdict.verdict is Verdict.NOT_GENUINE
        assert verdict.reasons == (Reason.NO_SEAL,)

    def test_a_serial_alone_is_issued_or_unknown(self, issued: SerialFacts) -> None:
        assert judge_serial(issued) is Verdict.ISSUED
        assert judge_serial(SerialFacts(serial=SERIAL, status="VOID")) is Verdict.UNKNOWN
