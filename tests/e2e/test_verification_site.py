"""A checker scans the seal and uploads the document, in a real browser: on ``meterai up``.

A form document is stamped on the embedded platform through the CLI, its page rendered by
poppler and the QR decoded from the pixels by zxing-cpp; headless Chromium (Debian's, driven
by Playwright) opens that URL on a phone-sized screen and reads the verdict from the page's
``data-verdict`` attributes, then uploads the stamped file and copies changed after stamping
through the page's form. The browser trusts exactly the site's certificate (by its public
key's hash), so TLS is checked as a phone would check a public certificate.

The phone-sized screenshots are kept in ``$METERAI_TEST_ARTIFACTS`` (default
``/tmp/meterai-test-artifacts``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from meterai_signing.pki import TestPki, generate_test_pki
from tests.integration.stamping.validators import decode_qr, render
from tests.support import altered_pdfs
from tests.support.browser import chromium_trusting
from tests.support.launch import EmbeddedPlatform

PHONE: ViewportSize = {"width": 390, "height": 844}
ARTIFACTS = Path(os.environ.get("METERAI_TEST_ARTIFACTS", "/tmp/meterai-test-artifacts"))


@dataclass
class Stamped:
    platform: EmbeddedPlatform
    serial: str
    path: Path
    web_port: int

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


@pytest.fixture(scope="module")
def stamped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stamped]:
    platform = EmbeddedPlatform(tmp_path_factory.mktemp("site"))
    platform.start()
    try:
        assert platform.cli("quota", "buy", "2", "--json").code == 0
        original = platform.home / "surat.pdf"
        original.write_bytes(altered_pdfs.form_pdf())
        result = platform.cli(
            "stamp",
            str(original),
            "--page",
            "1",
            "--rect",
            "380,60,520,200",
            "--out",
            str(platform.home / "stamped"),
            "--type",
            "Surat Lamaran",
            "--number",
            "CPNS/2024/001",
            "--date",
            "2024-09-06",
            "--json",
        )
        assert result.code == 0, result.stdout + result.stderr
        results: list[dict[str, object]] = result.json()["results"]  # type: ignore[assignment]
        (outcome,) = results
        ports = json.loads((platform.home / "platform.json").read_text())["ports"]
        yield Stamped(
            platform, str(outcome["serial"]), platform.home / "stamped" / "surat.pdf", ports["web"]
        )
    finally:
        platform.stop()


@pytest.fixture(scope="module")
def other_party(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("other-party"), key_type="ecdsa-p256")


@pytest.fixture(scope="module")
def copies(stamped: Stamped, other_party: TestPki) -> dict[str, bytes]:
    """The stamped file changed after stamping, made before the browser's event loop runs
    (pyHanko signs with ``asyncio.run``)."""
    key, certificate = other_party.signer_key, other_party.signer_cert
    return {
        "filled": altered_pdfs.fill_form_field(stamped.data),
        "content": altered_pdfs.change_content(stamped.data),
        "covered": altered_pdfs.sign_later(stamped.data, key, certificate, box=(0, 0, 595, 842)),
        "cosigned": altered_pdfs.sign_later(stamped.data, key, certificate),
    }


@pytest.fixture(scope="module")
def browser(stamped: Stamped, copies: dict[str, bytes]) -> Iterator[Browser]:
    with chromium_trusting(stamped.platform.home / "tls" / "web.crt") as browser:
        yield browser


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, accept_downloads=True)
    yield context.new_page()
    context.close()


def _qr_url(pdf: bytes) -> str:
    barcode = decode_qr(render(pdf, page=1, dpi=150))
    assert barcode is not None, "no QR code found on the stamped page"
    return str(barcode.text)


def _upload(page: Page, stamped: Stamped, name: str, data: bytes, lang: str = "id") -> None:
    path = stamped.platform.home / name
    path.write_bytes(data)
    page.goto(f"https://127.0.0.1:{stamped.web_port}/v?lang={lang}")
    page.set_input_files("#pdf", str(path))
    page.click("button[type=submit] >> nth=0")
    page.wait_for_selector("#verdict")


def _seal(page: Page) -> tuple[str | None, str | None]:
    seal = page.locator("section.seal .verdict").first
    changes = page.locator("section.seal .changes").first
    return seal.get_attribute("data-verdict"), changes.get_attribute("data-changes")


def test_the_qr_opens_the_seal_s_page_which_says_issued_in_both_languages(
    stamped: Stamped, phone: Page
) -> None:
    url = _qr_url(stamped.data)
    assert url == f"https://127.0.0.1:{stamped.web_port}/v/{stamped.serial}"
    response = phone.goto(url)
    assert response is not None and response.ok
    assert phone.get_attribute("#verdict", "data-verdict") == "issued"
    assert phone.get_attribute("html", "lang") == "id"
    assert "DITERBITKAN" in phone.inner_text("#verdict")
    assert phone.inner_text("#document-number") == "CPNS/2024/001"
    assert phone.inner_text("#document-date") == "2024-09-06"
    assert phone.inner_text("#document-type") == "Surat Lamaran"
    assert phone.inner_text("#value") == "Rp 10.000"
    assert phone.inner_text("#reseller")
    assert phone.evaluate("document.scripts.length") == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "seal-page-id.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    phone.click("header a")
    assert phone.get_attribute("html", "lang") == "en"
    assert phone.get_attribute("#verdict", "data-verdict") == "issued"
    assert "ISSUED" in phone.inner_text("#verdict")
    phone.screenshot(path=str(ARTIFACTS / "seal-page-en.png"), full_page=True)


def test_a_seal_without_a_timestamp_has_no_trusted_time_on_its_page_api_or_grpc(
    stamped: Stamped, phone: Page
) -> None:
    """``meterai up`` stamps B-B (no timestamp authority): the page says so, no error."""
    site = f"https://127.0.0.1:{stamped.web_port}"
    response = phone.goto(f"{site}/v/{stamped.serial}?lang=en")
    assert response is not None and response.ok
    assert phone.get_attribute("#verdict", "data-verdict") == "issued"
    assert phone.get_attribute("#trusted-time", "data-trusted-time") == ""
    assert "without a timestamp" in phone.inner_text("#trusted-time")
    api = phone.goto(f"{site}/api/v1/serials/{stamped.serial}")
    assert api is not None and api.ok
    assert api.json()["trusted_time"] is None
    grpc_answer = stamped.platform.cli("verify", stamped.serial, "--json")
    assert grpc_answer.code == 0, grpc_answer.stdout + grpc_answer.stderr
    assert "stamped_at" in grpc_answer.json() and "trusted_time" not in grpc_answer.json()


def test_an_unknown_serial_is_unknown(stamped: Stamped, phone: Page) -> None:
    phone.goto(f"https://127.0.0.1:{stamped.web_port}/v/{'Z' * 21}1")
    assert phone.get_attribute("#verdict", "data-verdict") == "unknown"


def test_the_stamped_file_uploaded_is_genuine_and_its_revision_downloads(
    stamped: Stamped, phone: Page
) -> None:
    _upload(phone, stamped, "as-stamped.pdf", stamped.data)
    assert phone.get_attribute("#verdict", "data-verdict") == "genuine"
    assert "ASLI" in phone.inner_text("#verdict")
    assert _seal(phone) == ("genuine", "")
    with phone.expect_download() as download:
        phone.click("a.download")
    assert Path(download.value.path()).read_bytes() == stamped.data
    phone.screenshot(path=str(ARTIFACTS / "upload-genuine-id.png"), full_page=True)


def test_a_form_value_filled_after_stamping_is_modified(
    stamped: Stamped, phone: Page, copies: dict[str, bytes]
) -> None:
    _upload(phone, stamped, "filled.pdf", copies["filled"], "en")
    assert phone.get_attribute("#verdict", "data-verdict") == "modified"
    assert "MODIFIED" in phone.inner_text("#verdict")
    assert _seal(phone) == ("modified", "form_filling")
    assert "form filling" in phone.inner_text("section.seal .changes")
    with phone.expect_download() as download:
        phone.click("a.download")
    assert Path(download.value.path()).read_bytes() == stamped.data
    phone.screenshot(path=str(ARTIFACTS / "upload-modified-en.png"), full_page=True)


def test_a_content_change_after_stamping_is_modified(
    stamped: Stamped, phone: Page, copies: dict[str, bytes]
) -> None:
    _upload(phone, stamped, "content.pdf", copies["content"])
    assert phone.get_attribute("#verdict", "data-verdict") == "modified"
    assert _seal(phone) == ("modified", "content")
    assert "isi dokumen" in phone.inner_text("section.seal .changes")


def test_a_later_signature_covering_the_page_is_modified(
    stamped: Stamped, phone: Page, copies: dict[str, bytes]
) -> None:
    _upload(phone, stamped, "covered.pdf", copies["covered"], "en")
    assert phone.get_attribute("#verdict", "data-verdict") == "modified"
    assert _seal(phone) == ("modified", "annotations signatures")
    assert re.search(r"other signatures", phone.inner_text("section.seal .changes"))


def test_a_later_invisible_signature_is_allowed_and_reported(
    stamped: Stamped, phone: Page, copies: dict[str, bytes]
) -> None:
    _upload(phone, stamped, "cosigned.pdf", copies["cosigned"], "en")
    assert phone.get_attribute("#verdict", "data-verdict") == "genuine"
    assert _seal(phone) == ("genuine", "signatures")


def test_grpc_gives_the_same_verdict_as_the_site(
    stamped: Stamped, copies: dict[str, bytes]
) -> None:
    genuine = stamped.platform.cli("verify", str(stamped.path))
    assert genuine.code == 0, genuine.stdout + genuine.stderr
    assert "changed after the seal: nothing" in genuine.stdout
    filled = stamped.platform.home / "filled-grpc.pdf"
    filled.write_bytes(copies["filled"])
    modified = stamped.platform.cli("verify", str(filled))
    assert modified.code == 1
    assert "changed after the seal: form_filling" in modified.stdout
