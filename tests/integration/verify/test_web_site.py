"""The public site over HTTPS: pages in both languages, the JSON API, and its guard.

The ledger here is empty, so every seal's serial is unknown and the verdict not-genuine; what
these tests prove is the site's own behaviour: the change report and the stamped revision
reach the checker, refusals come before work and say when to come back, and hostile uploads
cost only their own request. Genuine seals stamped by the platform are proved end to end in
``tests/e2e/test_verification_site.py``.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.engine import Connection

import meterai_quota as quota
from meterai_common.db import create_engine, run_in_transaction
from meterai_verify.web.guard import GuardLimits
from tests.integration.stamping.test_restamp import FIRST, SECOND
from tests.integration.verify import hostile_pdfs
from tests.integration.verify.conftest import SERIAL, USER_PASSWORD, Site, StartSite
from tests.integration.verify.test_sandbox import rss_mb
from tests.support import altered_pdfs

PDF = {"content-type": "application/pdf"}


def test_serves_https_only(start_site: StartSite) -> None:
    site = start_site()
    plain = site.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/v/{SERIAL}", timeout=5)


def test_an_unknown_serial_page_says_so_in_indonesian_first_then_english(
    start_site: StartSite,
) -> None:
    site = start_site()
    indonesian = site.client.get(f"/v/{SERIAL}")
    assert indonesian.status_code == 200
    assert 'data-verdict="unknown"' in indonesian.text
    assert "TIDAK DIKENAL" in indonesian.text
    assert 'lang="id"' in indonesian.text
    english = site.client.get(f"/v/{SERIAL}", params={"lang": "en"})
    assert 'data-verdict="unknown"' in english.text
    assert "UNKNOWN" in english.text
    assert "<script" not in indonesian.text + english.text


def test_the_serial_api_answers_unknown_without_internal_ids(start_site: StartSite) -> None:
    body = start_site().client.get(f"/api/v1/serials/{SERIAL}").json()
    assert body["verdict"] == "unknown"
    assert "reseller_id" not in body


def _issue(site: Site, trusted_time: datetime | None) -> str:
    """A serial issued in the site's ledger, with the given trusted time (None: a B-B seal)."""
    now = datetime.now(UTC)
    job_id = uuid.uuid4().hex

    def issue(conn: Connection) -> str:
        reseller = quota.create_reseller(conn, f"Toko {job_id[:8]}", now=now)
        order = quota.purchase(conn, reseller.id, 1, job_id, now=now)
        quota.confirm_payment(conn, order.id, f"pay-{job_id}", order.total_idr, now=now)
        quota.hold(conn, owner_id=reseller.id, reseller_id=reseller.id, job_id=job_id, now=now)
        return quota.commit(
            conn,
            job_id=job_id,
            document_digest="ab" * 32,
            document_type="Surat Pernyataan",
            document_number="",
            document_date=None,
            now=now,
            trusted_time=trusted_time,
        )

    db = create_engine(site.settings.database_url)
    try:
        return run_in_transaction(db, issue)
    finally:
        db.dispose()


def test_the_serial_page_shows_the_trusted_time_apart_from_the_platform_s_own(
    start_site: StartSite,
) -> None:
    site = start_site()
    certified = datetime(2026, 12, 3, 6, 30, 5, 250_000, tzinfo=UTC)
    serial = _issue(site, certified)
    indonesian = site.client.get(f"/v/{serial}").text
    assert 'data-trusted-time="2026-12-03T06:30:05.250000Z"' in indonesian
    assert "2026-12-03 06:30:05 UTC" in indonesian
    assert "disahkan oleh otoritas cap waktu" in indonesian
    english = site.client.get(f"/v/{serial}", params={"lang": "en"}).text
    assert 'data-trusted-time="2026-12-03T06:30:05.250000Z"' in english
    assert "certified by the timestamp authority" in english
    assert "by the e-meterai platform" in english  # stamped_at: its own clock
    body = site.client.get(f"/api/v1/serials/{serial}").json()
    assert datetime.fromisoformat(body["trusted_time"]) == certified
    assert datetime.fromisoformat(body["stamped_at"]) != certified


def test_a_seal_without_a_timestamp_shows_no_trusted_time_and_says_so(
    start_site: StartSite,
) -> None:
    site = start_site()
    serial = _issue(site, None)
    page = site.client.get(f"/v/{serial}", params={"lang": "en"})
    assert page.status_code == 200
    assert 'data-verdict="issued"' in page.text
    assert 'data-trusted-time=""' in page.text
    assert "none: this seal was made without a timestamp" in page.text
    assert site.client.get(f"/api/v1/serials/{serial}").json()["trusted_time"] is None


def test_an_upload_reports_what_changed_after_the_seal_and_the_stamped_revision(
    start_site: StartSite, stamped: bytes
) -> None:
    site = start_site()
    changed = altered_pdfs.fill_form_field(stamped)
    answer = site.client.post("/api/v1/documents:verify", content=changed, headers=PDF)
    assert answer.status_code == 200, answer.text
    (seal,) = answer.json()["seals"]
    assert seal["changes_after"] == ["form_filling"]
    assert seal["signature_valid"] and seal["trusted"]
    assert seal["verdict"] == "not-genuine"  # the serial is not in this site's ledger
    assert "serial_not_issued" in seal["reasons"]
    revision = seal["stamped_revision"]
    assert revision["length"] == len(stamped)
    download = site.client.get(revision["url"])
    assert download.content == stamped
    assert hashlib.sha256(download.content).hexdigest() == revision["sha256"]


def test_the_upload_form_shows_the_change_report(start_site: StartSite, stamped: bytes) -> None:
    site = start_site()
    page = site.client.post(
        "/v/verify",
        files={"pdf": ("letter.pdf", altered_pdfs.change_content(stamped), "application/pdf")},
        data={"lang": "en"},
    )
    assert page.status_code == 200
    assert 'data-verdict="not-genuine"' in page.text
    assert 'data-changes="content"' in page.text
    assert "Download the exact revision that was stamped" in page.text


def test_an_oversized_upload_is_refused_before_its_body_is_sent(start_site: StartSite) -> None:
    site = start_site(GuardLimits(max_upload_bytes=1024 * 1024))
    context = ssl.create_default_context(cafile=str(site.settings.tls_files.ca_certificate))
    with (
        socket.create_connection(("127.0.0.1", site.runtime.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            b"POST /api/v1/documents:verify HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/pdf\r\nContent-Length: 1000000000\r\n\r\n"
        )
        status_line = tls.recv(4096).split(b"\r\n")[0]
    assert b" 413 " in status_line


def test_a_burst_of_lookups_is_answered_429_with_retry_after(start_site: StartSite) -> None:
    site = start_site(GuardLimits(lookup_rate=1 / 60, lookup_burst=5))
    codes = [site.client.get(f"/api/v1/serials/{SERIAL}") for _ in range(8)]
    assert [c.status_code for c in codes[:5]] == [200] * 5
    refused = codes[-1]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


def test_uploads_beyond_a_client_s_rate_are_answered_429(
    start_site: StartSite, stamped: bytes
) -> None:
    # A token a minute: however slow each verification, the third comes before a refill.
    site = start_site(GuardLimits(verify_rate=1 / 60, verify_burst=2))
    codes = [
        site.client.post("/api/v1/documents:verify", content=stamped, headers=PDF).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_uploads_beyond_the_in_flight_cap_are_answered_429_at_once(
    start_site: StartSite, stamped: bytes
) -> None:
    site = start_site(GuardLimits(verify_rate=100, verify_burst=100, verify_inflight=1))
    slow = hostile_pdfs.million_objects()
    worker = threading.Thread(
        target=lambda: site.client.post("/api/v1/documents:verify", content=slow, headers=PDF)
    )
    worker.start()
    time.sleep(1.0)
    started = time.monotonic()
    busy = site.client.post("/api/v1/documents:verify", content=stamped, headers=PDF)
    assert busy.status_code == 429
    assert int(busy.headers["retry-after"]) >= 1
    assert time.monotonic() - started < 1.0
    worker.join(60)


@pytest.mark.parametrize("make", [hostile_pdfs.million_objects, hostile_pdfs.deep_nesting])
def test_a_hostile_upload_fails_only_itself_and_the_site_stays_small(
    start_site: StartSite, stamped: bytes, make: object
) -> None:
    site = start_site()
    pdf = make()  # type: ignore[operator]
    site.client.post("/api/v1/documents:verify", content=stamped, headers=PDF)
    before = rss_mb()
    started = time.monotonic()
    hostile = site.client.post("/api/v1/documents:verify", content=pdf, headers=PDF)
    assert hostile.status_code in (400, 422)
    assert time.monotonic() - started < 20
    assert (
        site.client.post("/api/v1/documents:verify", content=stamped, headers=PDF).status_code
        == 200
    )
    assert rss_mb() - before < 64 + len(pdf) / 2**20


def test_an_encrypted_upload_is_verified_with_the_password_header(
    start_site: StartSite, encrypted_stamped: bytes
) -> None:
    site = start_site()
    answer = site.client.post(
        "/api/v1/documents:verify",
        content=encrypted_stamped,
        headers={**PDF, "X-Document-Password": USER_PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    seals = answer.json()["seals"]
    assert [seal["serial"] for seal in seals] == [FIRST.seal.serial, SECOND.seal.serial]
    assert all(seal["signature_valid"] for seal in seals)


def test_an_encrypted_upload_without_its_password_is_asked_for_it(
    start_site: StartSite, encrypted_stamped: bytes
) -> None:
    site = start_site()
    answer = site.client.post("/api/v1/documents:verify", content=encrypted_stamped, headers=PDF)
    assert answer.status_code == 403
    assert "supply the document's password" in answer.json()["detail"]


def test_the_upload_form_takes_the_document_password(
    start_site: StartSite, encrypted_stamped: bytes
) -> None:
    site = start_site()
    home = site.client.get("/v?lang=en")
    assert 'type="password" name="password"' in home.text
    files = {"pdf": ("sealed.pdf", encrypted_stamped, "application/pdf")}
    refused = site.client.post("/v/verify", data={"lang": "en"}, files=files)
    assert refused.status_code == 403 and "supply the document" in refused.text
    page = site.client.post(
        "/v/verify", data={"lang": "en", "password": USER_PASSWORD}, files=files
    )
    assert page.status_code == 200, page.text
    assert page.text.count(f'data-serial="{FIRST.seal.serial}"') == 1, page.text
    assert page.text.count(f'data-serial="{SECOND.seal.serial}"') == 1, page.text
