"""Signatures that prove when, from a key in an HSM, through faults of the HSM and the TSA.

One distributed platform for the module (every service its own process, a Celery signing
worker, PostgreSQL and RabbitMQ of its own) whose platform key lives in a SoftHSM2 token set up
by ``meterai admin init-pki --pkcs11`` and whose signatures are timestamped by the platform's
TSA process (through :class:`~tests.support.tsa.TsaFaults`, which can make it slow or garbled).
Stamped files are judged by pdfsig, pyHanko and ``qpdf --check``; every fault test ends with
:func:`~tests.support.faults.assert_settled` (every job DONE or refunded, quota conserved,
``meterai admin reconcile`` clean) and an intact audit trail. The verification site
(``meterai serve web``) joins the platform for the test of the serial page's trusted time.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from meterai.stamping.v1 import stamping_pb2
from tests.support.browser import chromium_trusting
from tests.support.corpus import CORPUS
from tests.support.faults import (
    StampingClient,
    Tenant,
    assert_settled,
    create_operator,
    fresh_database,
    fresh_vhost,
    in_background,
    provision_tenant,
    submit_batch,
    wait_for,
)
from tests.support.launch import METERAI, DistributedPlatform
from tests.support.softhsm import SoftHsmToken, softhsm_token
from tests.support.tsa import TsaFaults, TsaProcess
from tests.support.validators import nss_db_trusting, pdfsig, qpdf_check

DOCUMENT = CORPUS / "pdflatex-4-pages.pdf"
RECT = "380,60,520,200"
DONE = stamping_pb2.JOB_STATE_DONE


@dataclass
class Trusted:
    platform: DistributedPlatform
    token: SoftHsmToken
    tsa: TsaProcess
    relay: TsaFaults
    operator_key: str


@pytest.fixture(scope="module")
def trusted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trusted]:
    home = tmp_path_factory.mktemp("trusted")
    token = softhsm_token(home / "hsm")
    with fresh_database() as database_url, fresh_vhost() as amqp_url:
        env = {
            **os.environ,
            "METERAI_HOME": str(home),
            "DATABASE_URL": database_url,
            **token.env(),
        }
        init = subprocess.run(
            [METERAI, "admin", "init-pki", "--pkcs11", token.module, "--token", token.label],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert init.returncode == 0, init.stdout + init.stderr
        assert "created pkcs11:meterai/meterai-signer" in init.stdout, init.stdout
        tsa = TsaProcess(home / "pki", home / "tsa.log").start()
        relay = TsaFaults(tsa.url, slow_s=1.5).start()
        platform = DistributedPlatform(home)
        try:
            platform.start(
                database_url,
                amqp_url,
                workers=1,
                extra_env={
                    **token.env(),
                    "METERAI_TSA_URL": relay.url,
                    "METERAI_TSA_TIMEOUT_MS": "1000",
                },
            )
            yield Trusted(platform, token, tsa, relay, create_operator(platform))
        finally:
            platform.stop()
            relay.stop()
            tsa.stop()


@pytest.fixture
def tenant(trusted: Trusted) -> Iterator[tuple[Tenant, StampingClient]]:
    trusted.relay.mode = "relay"
    if trusted.tsa.process is None or trusted.tsa.process.poll() is not None:
        trusted.tsa.restart()
    made = provision_tenant(trusted.platform, 40, trusted.operator_key, f"T-{uuid.uuid4().hex[:6]}")
    client = StampingClient(trusted.platform, made.api_key)
    try:
        yield made, client
    finally:
        client.close()


@pytest.fixture(scope="module")
def site_port(trusted: Trusted) -> int:
    """``meterai serve web`` on the module's platform, started by the first test needing it."""
    return trusted.platform.add_web()


def _done(client: StampingClient) -> int:
    return sum(1 for job in client.all_jobs() if job.state == DONE)


def _audit_intact(trusted: Trusted) -> None:
    verified = trusted.platform.cli("admin", "audit", "verify")
    assert verified.code == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout


class TestTheTrustedTimeIsPublic:
    def test_the_serial_page_api_and_grpc_show_the_time_certified_in_the_seal_s_own_token(
        self, trusted: Trusted, tenant: tuple[Tenant, StampingClient], site_port: int
    ) -> None:
        made, _ = tenant
        platform = trusted.platform
        out = platform.home / "trusted-time"
        submitted = datetime.now(UTC)
        result = platform.cli(
            "stamp", str(DOCUMENT), "--rect", RECT, "--out", str(out), "--json",
            api_key=made.api_key,
        )  # fmt: skip
        finished = datetime.now(UTC)
        assert result.code == 0, result.stdout + result.stderr
        (outcome,) = result.json()["results"]  # type: ignore[misc]
        serial = str(outcome["serial"])
        root = platform.home / "pki" / "root-ca.pem"
        context = ValidationContext(
            trust_roots=[load_cert_from_pemder(str(root))], allow_fetching=False
        )
        (embedded,) = PdfFileReader(BytesIO((out / DOCUMENT.name).read_bytes())).embedded_signatures
        token = validate_pdf_signature(
            embedded, context, ts_validation_context=context
        ).timestamp_validity
        assert token is not None and token.valid and token.trusted
        certified = token.timestamp  # the genTime inside the document's own token
        # The authority may round its clock down to the second it certifies.
        assert submitted.replace(microsecond=0) <= certified <= finished

        answer = platform.cli("verify", serial, "--json")
        assert answer.code == 0, answer.stdout + answer.stderr
        over_grpc = answer.json()
        assert datetime.fromisoformat(str(over_grpc["trusted_time"])) == certified
        # Issued by the platform's own clock after the authority certified the signature.
        assert certified <= datetime.fromisoformat(str(over_grpc["stamped_at"])) <= finished
        told = platform.cli("verify", serial).stdout
        assert "(certified by the timestamp authority)" in told, told

        site = f"https://127.0.0.1:{site_port}"
        with chromium_trusting(platform.home / "tls" / "web.crt") as browser:
            page = browser.new_page()
            for lang, label in (
                ("id", "disahkan oleh otoritas cap waktu"),
                ("en", "certified by the timestamp authority"),
            ):
                response = page.goto(f"{site}/v/{serial}?lang={lang}")
                assert response is not None and response.ok
                assert page.get_attribute("#verdict", "data-verdict") == "issued"
                shown = page.get_attribute("#trusted-time", "data-trusted-time")
                assert shown and datetime.fromisoformat(shown) == certified
                assert label in page.inner_text("#trusted-time")
            api = page.goto(f"{site}/api/v1/serials/{serial}")
            assert api is not None and api.ok
            assert datetime.fromisoformat(api.json()["trusted_time"]) == certified


class TestStampsFromTheToken:
    def test_validate_with_a_trusted_timestamp_in_pyhanko_pdfsig_and_qpdf(
        self, trusted: Trusted, tenant: tuple[Tenant, StampingClient]
    ) -> None:
        made, _ = tenant
        platform = trusted.platform
        out = platform.home / "stamped"
        result = platform.cli(
            "stamp", str(DOCUMENT), "--rect", RECT, "--out", str(out), "--json",
            api_key=made.api_key,
        )  # fmt: skip
        assert result.code == 0, result.stdout + result.stderr
        (outcome,) = result.json()["results"]  # type: ignore[misc]
        stamped = out / DOCUMENT.name
        root = platform.home / "pki" / "root-ca.pem"

        report = pdfsig(stamped, nss_db_trusting(root, platform.home / "nss"))
        assert report.signatures == 1 and report.all_valid and report.all_trusted, report.output
        ok, output = qpdf_check(stamped)
        assert ok, output
        context = ValidationContext(
            trust_roots=[load_cert_from_pemder(str(root))], allow_fetching=False
        )
        (embedded,) = PdfFileReader(BytesIO(stamped.read_bytes())).embedded_signatures
        status = validate_pdf_signature(embedded, context, ts_validation_context=context)
        assert status.bottom_line, status.pretty_print_details()
        assert status.timestamp_validity is not None, "B-B: no signature timestamp"
        assert status.timestamp_validity.valid and status.timestamp_validity.trusted
        assert embedded.signer_cert.subject.native["common_name"] == "meterai token signer"

        history = platform.cli("admin", "audit", "show", "--serial", str(outcome["serial"]))
        assert history.code == 0, history.stderr
        assert "signature_made" in history.stdout
        assert "key_label=pkcs11:meterai/meterai-signer RSA-2048" in history.stdout
        assert "timestamped=True" in history.stdout
        _audit_intact(trusted)

    def test_the_signing_processes_hold_no_key_file(self, trusted: Trusted) -> None:
        pki = trusted.platform.home / "pki"
        for name in ("signing", "worker-0"):
            environ = Path(f"/proc/{trusted.platform.processes[name].pid}/environ").read_bytes()
            assert b"METERAI_SIGNING_KEY=" not in environ
            assert b"METERAI_PKCS11_MODULE=" in environ
        chain = (pki / "token-chain.pem").read_text()
        assert "PRIVATE KEY" not in chain


class TestFaults:
    def test_tsa_stopped_during_a_batch_jobs_wait_then_finish(
        self, trusted: Trusted, tenant: tuple[Tenant, StampingClient]
    ) -> None:
        made, client = tenant
        thread, result = in_background(lambda: submit_batch(client, 20, threads=2, pace_s=0.2))
        wait_for("the first stamps", lambda: _done(client) >= 2, 60)
        trusted.tsa.stop()
        time.sleep(6)
        assert _done(client) < 20, "the TSA was stopped too late to test anything"
        trusted.tsa.restart()
        thread.join(120)
        batch = result["batch"]
        assert batch.codes() == {"OK": 20}, batch.codes()
        settled = assert_settled(trusted.platform, client, made, batch.accepted, timeout=180)
        assert len(settled.serials) == 20
        _audit_intact(trusted)

    def test_tsa_slower_than_the_timeout_delays_but_loses_nothing(
        self, trusted: Trusted, tenant: tuple[Tenant, StampingClient]
    ) -> None:
        made, client = tenant
        trusted.relay.mode = "slow"  # 1.5 s per answer against a 1 s timeout
        thread, result = in_background(lambda: submit_batch(client, 10, threads=2))
        time.sleep(5)
        assert _done(client) == 0, "a token arrived although every answer was too slow"
        trusted.relay.mode = "relay"
        thread.join(120)
        batch = result["batch"]
        assert batch.codes() == {"OK": 10}, batch.codes()
        settled = assert_settled(trusted.platform, client, made, batch.accepted, timeout=180)
        assert len(settled.serials) == 10

    def test_tsa_answering_garbage_fails_jobs_cleanly_with_no_serial(
        self, trusted: Trusted, tenant: tuple[Tenant, StampingClient]
    ) -> None:
        made, client = tenant
        warm = submit_batch(client, 1)  # the placeholder bound is measured on a good answer
        client.wait_terminal(warm.accepted, 60)
        trusted.relay.mode = "garbage"
        batch = submit_batch(client, 5, threads=2)
        assert batch.codes() == {"OK": 5}, batch.codes()
        settled = assert_settled(
            trusted.platform, client, made, batch.accepted, timeout=120, all_done=False
        )
        assert set(settled.serials) == set(warm.accepted)  # no other stamp was issued
        failed = settled.in_state(stamping_pb2.JOB_STATE_FAILED)
        assert len(failed) == 5, [(j.state, j.failure_reason) for j in settled.jobs.values()]
        assert len(failed) == 5 and all(job.refunded for job in failed)
        assert all("garbage" in job.failure_reason for job in failed), failed[0]
        trusted.relay.mode = "relay"
        _audit_intact(trusted)

    def test_hsm_token_removed_and_restored_mid_batch(
        self, trusted: Trusted, tenant: tuple[Tenant, StampingClient]
    ) -> None:
        made, client = tenant
        thread, result = in_background(lambda: submit_batch(client, 20, threads=2, pace_s=0.2))
        wait_for("the first stamps", lambda: _done(client) >= 2, 60)
        with trusted.token.removed(for_s=5):
            pass
        thread.join(120)
        batch = result["batch"]
        assert batch.codes() == {"OK": 20}, batch.codes()
        settled = assert_settled(trusted.platform, client, made, batch.accepted, timeout=180)
        assert len(settled.serials) == 20
        assert "reopening" in trusted.platform.log("worker-0"), "the token was never missed"
        _audit_intact(trusted)
