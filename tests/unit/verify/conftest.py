"""A PKI and a PDF signed through pyHanko's interrupted flow with our CMS, for the checker tests.

The PDF is built here with pypdf and signed without the project's stamping
engine, so the checker is judged against a document whose structure pyHanko,
not our stamper, produced.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from meterai_signing.cms import SigningIdentity, load_identity
from meterai_signing.pki import TestPki, generate_test_pki
from tests.support import signed_pdfs

SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"

PdfSigning = Callable[..., bytes]


def _der(pem_path: Path) -> bytes:
    return x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(Encoding.DER)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki"), key_type="ecdsa-p256")


@pytest.fixture(scope="session")
def identity(pki: TestPki) -> SigningIdentity:
    return load_identity(pki.signer_key, pki.chain)


@pytest.fixture(scope="session")
def root_der(pki: TestPki) -> bytes:
    return _der(pki.root_cert)


@pytest.fixture(scope="session")
def signed_pdf(identity: SigningIdentity) -> bytes:
    return signed_pdfs.sign_pdf(
        signed_pdfs.blank_pdf(),
        identity,
        field_name=f"e-meterai-{SERIAL}",
        reason=f"e-Meterai {SERIAL}",
    )


@pytest.fixture(scope="session")
def serial() -> str:
    """The e-meterai serial that ``signed_pdf`` names in its reason and field name."""
    return SERIAL


@pytest.fixture(scope="session")
def blank_pdf() -> Callable[[], bytes]:
    """Builds an unsigned one-page PDF whose /Title contains ``meterai verify test``."""
    return signed_pdfs.blank_pdf


@pytest.fixture(scope="session")
def sign_pdf() -> PdfSigning:
    """Signs via pyHanko's interrupted flow with our CMS: (pdf, identity, *, field_name, reason)."""
    return signed_pdfs.sign_pdf


@pytest.fixture(scope="session")
def other_root_der(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    other = generate_test_pki(tmp_path_factory.mktemp("other-pki"), key_type="ecdsa-p256")
    return _der(other.root_cert)
