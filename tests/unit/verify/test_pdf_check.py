"""Specification of ``check_pdf``: what an uploaded PDF's signatures are reported as."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from io import BytesIO

import pytest
from pyhanko.pdf_utils.generic import pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from meterai_signing.cms import SigningIdentity
from meterai_verify.pdf_check import (
    Coverage,
    PdfCheckError,
    async_check_pdf,
    check_pdf,
    extract_serial,
)


def _flip(pdf: bytes, marker: bytes) -> bytes:
    """Change one letter's case inside signed bytes: the file still parses, the digest breaks."""
    tampered = bytearray(pdf)
    tampered[pdf.index(marker)] ^= 0x20
    return bytes(tampered)


class TestGenuineDocument:
    def test_is_intact_valid_trusted_and_covers_the_whole_file(
        self, signed_pdf: bytes, root_der: bytes
    ) -> None:
        (signature,) = check_pdf(signed_pdf, [root_der]).signatures
        assert signature.intact
        assert signature.valid
        assert signature.trusted
        assert signature.coverage is Coverage.WHOLE_FILE
        assert signature.modification_level == "NONE"
        assert signature.modifications_acceptable
        assert signature.coverage_ok
        assert signature.ok
        assert signature.error is None

    def test_reports_field_reason_serial_and_signer(
        self, signed_pdf: bytes, root_der: bytes, serial: str
    ) -> None:
        result = check_pdf(signed_pdf, [root_der])
        (signature,) = result.signatures
        assert signature.field_name == f"e-meterai-{serial}"
        assert signature.reason == f"e-Meterai {serial}"
        assert signature.serial == serial
        assert result.serials == (serial,)
        assert signature.signer is not None and "meterai test signer" in signature.signer

    def test_reports_the_signed_digest_and_the_claimed_time(
        self, signed_pdf: bytes, root_der: bytes
    ) -> None:
        (embedded,) = PdfFileReader(BytesIO(signed_pdf)).embedded_signatures
        (signature,) = check_pdf(signed_pdf, [root_der]).signatures
        assert signature.message_digest == embedded.compute_digest().hex()
        assert signature.signing_time is not None
        assert signature.signing_time.tzinfo is not None

    def test_can_be_awaited_from_async_code(self, signed_pdf: bytes, root_der: bytes) -> None:
        result = asyncio.run(async_check_pdf(signed_pdf, [root_der]))
        assert result.signatures[0].trusted


class TestTamperedDocument:
    def test_a_byte_flipped_after_signing_breaks_integrity(
        self, signed_pdf: bytes, root_der: bytes, serial: str
    ) -> None:
        (signature,) = check_pdf(_flip(signed_pdf, b"meterai verify test"), [root_der]).signatures
        assert not signature.intact
        assert not signature.trusted
        assert not signature.ok
        assert signature.serial == serial  # still says which seal was forged

    def test_an_appended_revision_is_no_longer_whole_file_coverage(
        self, signed_pdf: bytes, root_der: bytes
    ) -> None:
        writer = IncrementalPdfFileWriter(BytesIO(signed_pdf))
        writer.root["/Lang"] = pdf_string("id-ID")
        writer.update_root()
        out = BytesIO()
        writer.write(out)
        (signature,) = check_pdf(out.getvalue(), [root_der]).signatures
        assert signature.intact and signature.valid
        assert signature.coverage is Coverage.WHOLE_REVISION
        assert signature.modification_level is not None


class TestTrust:
    def test_a_signer_outside_the_given_roots_is_not_trusted(
        self, signed_pdf: bytes, other_root_der: bytes
    ) -> None:
        (signature,) = check_pdf(signed_pdf, [other_root_der]).signatures
        assert signature.intact
        assert signature.valid
        assert not signature.trusted
        assert not signature.ok

    def test_no_roots_means_nothing_is_trusted(self, signed_pdf: bytes) -> None:
        (signature,) = check_pdf(signed_pdf, []).signatures
        assert signature.valid and not signature.trusted

    def test_a_trust_root_that_is_not_a_certificate_is_refused(self, signed_pdf: bytes) -> None:
        with pytest.raises(PdfCheckError, match="trust root #0"):
            check_pdf(signed_pdf, [b"not DER"])


class TestUnreadableInput:
    @pytest.mark.parametrize(
        "data",
        [b"", b"hello, not a pdf", b"\x89PNG\r\n\x1a\n" + bytes(100), b"%PDF-1.7\n garbage"],
        ids=["empty", "text", "png", "truncated-pdf"],
    )
    def test_is_a_pdf_check_error_never_a_builtin_exception(
        self, data: bytes, root_der: bytes
    ) -> None:
        with pytest.raises(PdfCheckError):
            check_pdf(data, [root_der])

    def test_an_unsigned_pdf_has_no_signatures(
        self, root_der: bytes, blank_pdf: Callable[[], bytes]
    ) -> None:
        result = check_pdf(blank_pdf(), [root_der])
        assert result.signatures == ()
        assert not result.signed


class TestSeveralSignatures:
    def test_every_signature_is_listed_in_document_order(
        self,
        signed_pdf: bytes,
        identity: SigningIdentity,
        root_der: bytes,
        serial: str,
        sign_pdf: Callable[..., bytes],
    ) -> None:
        second = "1Z2Y3X4W5V6U7T8S9R0Q1P"
        twice = sign_pdf(
            signed_pdf, identity, field_name="Signature2", reason=f"Dibubuhi e-meterai no. {second}"
        )
        result = check_pdf(twice, [root_der])
        assert result.serials == (serial, second)
        first, last = result.signatures
        assert first.coverage is Coverage.WHOLE_REVISION
        assert first.modifications_acceptable  # adding a signature is a permitted change
        assert first.ok
        assert last.coverage is Coverage.WHOLE_FILE
        assert last.ok


SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"


class TestSerialExtraction:
    @pytest.mark.parametrize(
        "text",
        [
            f"e-Meterai {SERIAL}",
            f"e-meterai: {SERIAL}",
            f"E-METERAI SN {SERIAL} (pajak)",
            f"Dibubuhi e-meterai no. seri: {SERIAL}",
            f"e-meterai-{SERIAL}",
            f"emeterai_{SERIAL}",
            f"eMeterai #{SERIAL}",
        ],
    )
    def test_finds_the_serial_after_the_marker(self, text: str) -> None:
        assert extract_serial(text) == SERIAL

    def test_prefers_the_reason_over_the_field_name(self) -> None:
        other = "ZZZZZZZZZZZZZZZZZZZZZ1"
        assert extract_serial(f"e-meterai {SERIAL}", f"e-meterai-{other}") == SERIAL

    def test_falls_back_to_the_field_name(self) -> None:
        assert extract_serial("Approved", f"e-meterai-{SERIAL}") == SERIAL
        assert extract_serial(None, SERIAL) == SERIAL

    def test_accepts_a_lone_unmarked_serial(self) -> None:
        assert extract_serial(f"Stamp duty paid {SERIAL}") == SERIAL

    @pytest.mark.parametrize(
        "text",
        [
            "Signature1",
            f"e-meterai {SERIAL.lower()}",
            f"e-meterai {SERIAL}X",
            f"x{SERIAL}",
            f"{SERIAL} and 1Z2Y3X4W5V6U7T8S9R0Q1P",
            "1234567890123456789012",
        ],
        ids=["no-serial", "lower-case", "too-long", "glued", "ambiguous", "unmarked-digits"],
    )
    def test_finds_nothing_where_there_is_no_unambiguous_serial(self, text: str) -> None:
        assert extract_serial(text) is None

    def test_a_marked_all_digit_token_is_a_serial(self) -> None:
        # Unmarked, 22 digits could be any number; after the marker it is the serial.
        assert extract_serial("e-meterai 1234567890123456789012") == "1234567890123456789012"
