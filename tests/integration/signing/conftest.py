"""PDFs signed through pyHanko's interrupted flow with our CMS, one PKI per key type.

The PDF is built here with pypdf and signed without the project's stamping
engine, so the CMS is judged inside a document whose structure pyHanko,
not our stamper, produced.
"""

from __future__ import annotations

import pytest

from meterai_signing.cms import SigningIdentity, load_identity
from meterai_signing.pki import TestPki, generate_test_pki
from tests.support.signed_pdfs import blank_pdf, sign_pdf

SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"


@pytest.fixture(scope="session", params=["rsa2048", "rsa3072", "ecdsa-p256"])
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki"), key_type=request.param)


@pytest.fixture(scope="session")
def identity(pki: TestPki) -> SigningIdentity:
    return load_identity(pki.signer_key, pki.chain)


@pytest.fixture(scope="session")
def signed_pdf(identity: SigningIdentity) -> bytes:
    return sign_pdf(
        blank_pdf(),
        identity,
        field_name=f"e-meterai-{SERIAL}",
        reason=f"e-Meterai {SERIAL}",
    )
