"""PDFs signed through pyHanko's interrupted flow with our CMS, one PKI per key type.

The PDF is built here with pypdf and signed without the project's stamping
engine, so the CMS is judged inside a document whose structure pyHanko,
not our stamper, produced.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from meterai_signing.cms import SigningIdentity, load_identity
from meterai_signing.pki import TestPki, generate_test_pki
from tests.support.signed_pdfs import blank_pdf, sign_pdf
from tests.support.softhsm import SoftHsmToken, softhsm_token
from tests.support.tsa import TsaProcess

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


@pytest.fixture(scope="session")
def tsa_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """An RSA test PKI whose intermediate also certifies the timestamp authority."""
    return generate_test_pki(tmp_path_factory.mktemp("tsa-pki"), key_type="rsa2048")


@pytest.fixture(scope="session")
def tsa(tsa_pki: TestPki) -> Iterator[TsaProcess]:
    """The platform's timestamp authority, as its own process."""
    process = TsaProcess(tsa_pki.directory, tsa_pki.directory / "tsa.log").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """A SoftHSM2 token; this process's PKCS#11 library reads its configuration."""
    made = softhsm_token(tmp_path_factory.mktemp("softhsm"))
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(made.conf)
    try:
        yield made
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
