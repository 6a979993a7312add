"""Headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright, no browser download)
that trusts exactly one site certificate, by its public key's hash, as a phone trusts a public
certificate: TLS is still checked, only the trust anchor is the test's."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, sync_playwright

__all__ = ["CHROMIUM", "chromium_trusting"]

CHROMIUM = "/usr/bin/chromium"


def _spki_hash(certificate: Path) -> str:
    public = x509.load_pem_x509_certificate(certificate.read_bytes()).public_key()
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@contextmanager
def chromium_trusting(certificate: Path) -> Iterator[Browser]:
    """A browser that accepts the site whose certificate (PEM) is ``certificate``.

    Playwright's sync API runs an event loop while open: make what needs ``asyncio.run``
    (pyHanko's signing and validation) before entering.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                f"--ignore-certificate-errors-spki-list={_spki_hash(certificate)}",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()
