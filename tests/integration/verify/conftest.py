"""A verification site and service on a real SQLite ledger, TLS, and the session's test PKI."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from meterai_common.config import Settings
from meterai_common.db import create_engine, migrate
from meterai_common.tls import TlsFiles
from meterai_signing.cms import SigningIdentity, load_identity
from meterai_signing.pki import TestPki, generate_test_pki
from meterai_verify.web.app import WebConfig
from meterai_verify.web.guard import GuardLimits
from meterai_verify.web.server import WebRuntime, start_web
from tests.integration.stamping.test_restamp import FIRST, SECOND
from tests.support import altered_pdfs, signed_pdfs
from tests.unit.stamping.samples import CORPUS, stamp_and_sign

SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"
USER_PASSWORD = "rahasia"
"""User password of :func:`encrypted_stamped`; its owner password is :data:`OWNER_PASSWORD`."""
OWNER_PASSWORD = "pemilik"


@pytest.fixture(scope="session")
def encrypted_stamped(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 4-page AES-256 document with a user password, sealed twice by the platform's engine
    (``FIRST`` then ``SECOND`` of the re-stamping tests), still encrypted."""
    target = tmp_path_factory.mktemp("encrypted") / "encrypted.pdf"
    subprocess.run(
        ["qpdf", "--encrypt", USER_PASSWORD, OWNER_PASSWORD, "256", "--",
         str(CORPUS / "pdflatex-4-pages.pdf"), str(target)],
        check=True,
        timeout=60,
    )  # fmt: skip
    out = target.read_bytes()
    for placed in (FIRST, SECOND):
        out = stamp_and_sign(
            out, page=placed.page, rect=placed.rect, seal=placed.seal, password=USER_PASSWORD
        )
    return out


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("verify-pki"), key_type="ecdsa-p256")


@pytest.fixture(scope="session")
def root_der(pki: TestPki) -> bytes:
    certificate = x509.load_pem_x509_certificate(pki.root_cert.read_bytes())
    return certificate.public_bytes(Encoding.DER)


@pytest.fixture(scope="session")
def identity(pki: TestPki) -> SigningIdentity:
    return load_identity(pki.signer_key, pki.chain)


@pytest.fixture(scope="session")
def stamped(identity: SigningIdentity) -> bytes:
    """A form PDF sealed by the test PKI's signer, naming SERIAL (not in any ledger)."""
    return signed_pdfs.sign_pdf(
        altered_pdfs.form_pdf(), identity, field_name=f"e-meterai-{SERIAL}", reason=SERIAL
    )


def platform_settings(home: Path, tls: TlsFiles, pki: TestPki) -> Settings:
    return Settings.from_env(
        {
            "WEB_PORT": "0",
            "VERIFY_PORT": "0",
            "METERAI_TLS_DIR": str(tls.directory),
            "METERAI_TRUST_ROOTS": str(pki.root_cert),
        },
        home=home,
    )


@dataclass
class Site:
    runtime: WebRuntime
    client: httpx.Client
    settings: Settings

    @property
    def url(self) -> str:
        return self.runtime.base_url


StartSite = Callable[..., Site]


@pytest.fixture
def start_site(tmp_path: Path, tls_files: TlsFiles, pki: TestPki) -> Iterator[StartSite]:
    """Starts a site with the given :class:`GuardLimits` (generous ones by default)."""
    started: list[Site] = []

    def start(limits: GuardLimits | None = None) -> Site:
        settings = platform_settings(tmp_path / f"home{len(started)}", tls_files, pki)
        db = create_engine(settings.database_url)
        migrate(db)
        generous = GuardLimits(
            lookup_rate=1000, lookup_burst=1000, verify_rate=1000, verify_burst=1000
        )
        runtime = start_web(settings, db, WebConfig(guard=limits or generous))
        client = httpx.Client(
            base_url=runtime.base_url,
            verify=ssl.create_default_context(cafile=str(tls_files.ca_certificate)),
            timeout=60,
        )
        site = Site(runtime, client, settings)
        started.append(site)
        return site

    yield start
    for site in started:
        site.client.close()
        site.runtime.stop(1.0)
