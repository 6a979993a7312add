"""Our CMS, put in a real PDF by pyHanko's interrupted signing, passes two outside validators.

pyHanko prepares the signature field and ``/ByteRange`` and computes the
digest; only that digest crosses over to :func:`sign_digest`, as it does
between the stamping service and the signing worker. The finished file must
then validate in pyHanko's validator and in poppler's ``pdfsig`` (NSS).
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from meterai_signing.cms import SigningIdentity, signature_size
from meterai_signing.pki import TestPki, generate_test_pki
from tests.support.validators import nss_db_trusting, pdfsig

PDFSIG_VALID = "Signature Validation: Signature is Valid."
PDFSIG_TRUSTED = "Certificate Validation: Certificate is Trusted."


def _root(pki: TestPki) -> asn1_x509.Certificate:
    _, _, der = pem.unarmor(pki.root_cert.read_bytes())
    return asn1_x509.Certificate.load(der)


class TestPyHankoValidator:
    def test_signature_is_intact_valid_and_trusted(self, signed_pdf: bytes, pki: TestPki) -> None:
        (embedded,) = PdfFileReader(BytesIO(signed_pdf)).embedded_signatures
        context = ValidationContext(trust_roots=[_root(pki)], allow_fetching=False)
        status = validate_pdf_signature(embedded, signer_validation_context=context)
        assert status.intact
        assert status.valid
        assert status.trusted
        assert status.bottom_line

    def test_signature_covers_the_whole_file_with_no_modification(
        self, signed_pdf: bytes, pki: TestPki
    ) -> None:
        (embedded,) = PdfFileReader(BytesIO(signed_pdf)).embedded_signatures
        context = ValidationContext(trust_roots=[_root(pki)], allow_fetching=False)
        status = validate_pdf_signature(embedded, signer_validation_context=context)
        assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        assert status.modification_level == ModificationLevel.NONE

    def test_is_a_pades_signature_whose_time_is_in_the_dictionary(self, signed_pdf: bytes) -> None:
        (embedded,) = PdfFileReader(BytesIO(signed_pdf)).embedded_signatures
        assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        assert embedded.self_reported_timestamp is not None

    def test_placeholder_sized_from_signature_size_holds_the_cms(
        self, signed_pdf: bytes, identity: SigningIdentity
    ) -> None:
        (embedded,) = PdfFileReader(BytesIO(signed_pdf)).embedded_signatures
        contents = embedded.pkcs7_content
        assert len(contents) <= signature_size(identity)

    def test_an_unknown_root_is_not_trusted(
        self, signed_pdf: bytes, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        stranger = generate_test_pki(tmp_path_factory.mktemp("stranger"), key_type="ecdsa-p256")
        (embedded,) = PdfFileReader(BytesIO(signed_pdf)).embedded_signatures
        context = ValidationContext(trust_roots=[_root(stranger)], allow_fetching=False)
        status = validate_pdf_signature(embedded, signer_validation_context=context)
        assert status.intact and status.valid
        assert not status.trusted


class TestPdfsig:
    def test_signature_is_valid(self, signed_pdf: bytes, tmp_path: Path) -> None:
        pdf = tmp_path / "signed.pdf"
        pdf.write_bytes(signed_pdf)
        output = pdfsig(pdf).output
        assert PDFSIG_VALID in output, output
        assert "ETSI.CAdES.detached" in output
        assert "Total document signed" in output

    def test_chain_is_trusted_given_the_root(
        self, signed_pdf: bytes, pki: TestPki, tmp_path: Path
    ) -> None:
        pdf = tmp_path / "signed.pdf"
        pdf.write_bytes(signed_pdf)
        output = pdfsig(pdf, nss_db_trusting(pki.root_cert, tmp_path / "nss")).output
        assert PDFSIG_VALID in output, output
        assert PDFSIG_TRUSTED in output, output

    def test_a_flipped_byte_invalidates_the_signature(
        self, signed_pdf: bytes, tmp_path: Path
    ) -> None:
        target = signed_pdf.index(b"meterai verify test")
        tampered = bytearray(signed_pdf)
        tampered[target] ^= 0x20  # 'm' -> 'M': the file still parses
        pdf = tmp_path / "tampered.pdf"
        pdf.write_bytes(bytes(tampered))
        output = pdfsig(pdf).output
        assert PDFSIG_VALID not in output, output
        assert "Digest Mismatch" in output or "Signature is Invalid" in output, output
