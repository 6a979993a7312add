"""A reseller buys quota, stamps a real PDF and anyone verifies it — on the embedded platform
(``meterai up``) and with every service as its own process on PostgreSQL and RabbitMQ.

The stamped file is judged by validators we did not write: poppler's ``pdfsig``, pyHanko's
validator and ``qpdf --check``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.corpus import CORPUS
from tests.support.launch import DistributedPlatform, EmbeddedPlatform, _Platform
from tests.support.validators import nss_db_trusting, pdfsig, pyhanko_validate, qpdf_check

DOCUMENT = CORPUS / "pdflatex-4-pages.pdf"
RECT = "380,60,520,200"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPlatform]:
    platform = EmbeddedPlatform(tmp_path_factory.mktemp("embedded"))
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def distributed(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, amqp_url: str
) -> Iterator[DistributedPlatform]:
    platform = DistributedPlatform(tmp_path_factory.mktemp("distributed"))
    # Documents in PostgreSQL here (the embedded platform uses a directory): both stores e2e.
    # Finishing runs in its own process, as under heavy load (the fault tests cover a stamping
    # service that finishes too).
    platform.start(
        postgres_url,
        amqp_url,
        workers=1,
        extra_env={"METERAI_DOCUMENTS": "database", "METERAI_STAMPING_FINISHERS": "0"},
    )
    platform.add_finisher("finisher-1")
    yield platform
    platform.stop()


def _buy_three(platform: _Platform, api_key: str | None, operator_key: str | None) -> None:
    bought = platform.cli("quota", "buy", "3", "--json", api_key=api_key)
    assert bought.code == 0, bought.stderr
    order = bought.json()
    if operator_key is not None:
        assert order["state"] == "ORDER_STATE_AWAITING_PAYMENT"
        for _ in range(2):  # the gateway's confirmation arrives twice: credited once
            confirmed = platform.cli(
                "quota",
                "confirm",
                str(order["order_id"]),
                "--reference",
                "pay-e2e-1",
                "--amount",
                "30000",
                "--json",
                api_key=operator_key,
            )
            assert confirmed.code == 0, confirmed.stderr
    else:
        assert order["state"] == "ORDER_STATE_PAID"


def _balance(platform: _Platform, api_key: str | None) -> dict[str, object]:
    result = platform.cli("quota", "balance", "--json", api_key=api_key)
    assert result.code == 0, result.stderr
    return result.json()


def _stamp_and_check(platform: _Platform, api_key: str | None) -> None:
    _balance_before = _balance(platform, api_key)
    out = platform.home / "stamped"
    result = platform.cli(
        "stamp",
        str(DOCUMENT),
        "--page",
        "2",
        "--rect",
        RECT,
        "--out",
        str(out),
        "--type",
        "Surat Lamaran",
        "--number",
        "CPNS/2024/001",
        "--date",
        "2024-09-06",
        "--json",
        api_key=api_key,
    )
    assert result.code == 0, result.stdout + result.stderr
    (outcome,) = result.json()["results"]  # type: ignore[misc]
    serial = outcome["serial"]
    stamped = out / DOCUMENT.name
    assert stamped.read_bytes().startswith(DOCUMENT.read_bytes()), "not an incremental update"

    root = platform.home / "pki" / "root-ca.pem"
    report = pdfsig(stamped, nss_db_trusting(root, platform.home / "nss"))
    assert report.signatures == 1 and report.all_valid, report.output
    assert report.last_covers_whole_document, report.output
    assert report.all_trusted, report.output
    (verdict,) = pyhanko_validate(stamped.read_bytes(), root)
    assert verdict["intact"] and verdict["valid"] and verdict["trusted"], verdict
    assert verdict["coverage"] == "ENTIRE_FILE", verdict
    ok, output = qpdf_check(stamped)
    assert ok, output

    by_serial = platform.cli("verify", str(serial))
    assert by_serial.code == 0, by_serial.stdout + by_serial.stderr
    assert "ISSUED" in by_serial.stdout
    by_file = platform.cli("verify", str(stamped))
    assert by_file.code == 0, by_file.stdout + by_file.stderr
    assert "GENUINE" in by_file.stdout

    tampered = platform.home / "tampered.pdf"
    data = bytearray(stamped.read_bytes())
    data[len(DOCUMENT.read_bytes()) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    assert platform.cli("verify", str(tampered)).code == 1

    balance = _balance(platform, api_key)
    assert (balance["available"], balance["held"], balance["consumed"]) == (2, 0, 1), balance


def _bad_requests_charge_nothing(platform: _Platform, api_key: str | None) -> None:
    before = _balance(platform, api_key)
    out = platform.home / "rejected"
    junk = platform.home / "not-a-pdf.pdf"
    junk.write_bytes(b"this is a text file, not a PDF\n")
    cases = [
        ((str(junk), "--page", "1"), "INVALID_ARGUMENT"),
        ((str(DOCUMENT), "--page", "9"), "INVALID_ARGUMENT"),
        ((str(DOCUMENT), "--page", "1", "--rect", "0,0,5,5"), "INVALID_ARGUMENT"),
    ]
    for args, code in cases:
        rect = () if "--rect" in args else ("--rect", RECT)
        result = platform.cli("stamp", *args, *rect, "--out", str(out), api_key=api_key)
        assert result.code == 1, result.stdout + result.stderr
        assert code in result.stderr, result.stderr
    wrong_key = platform.cli(
        "stamp", str(DOCUMENT), "--rect", RECT, "--out", str(out), api_key="mtr_wrong"
    )
    assert wrong_key.code == 1 and "UNAUTHENTICATED" in wrong_key.stderr, wrong_key.stderr
    assert _balance(platform, api_key) == before


class TestEmbeddedPlatform:
    def test_buy_stamp_verify_on_meterai_up(self, embedded: EmbeddedPlatform) -> None:
        _buy_three(embedded, None, None)
        _stamp_and_check(embedded, None)

    def test_bad_requests_get_precise_errors_and_charge_nothing(
        self, embedded: EmbeddedPlatform
    ) -> None:
        _bad_requests_charge_nothing(embedded, None)

    def test_a_batch_reports_each_file_and_fails_if_any_failed(
        self, embedded: EmbeddedPlatform
    ) -> None:
        assert embedded.cli("quota", "buy", "2").code == 0
        before = _balance(embedded, None)
        junk = embedded.home / "broken.pdf"
        junk.write_bytes(b"%PDF-1.7\n% truncated before any object")
        files = [CORPUS / "jpeg.pdf", junk, CORPUS / "002-trivial-libre-office-writer.pdf"]
        out = embedded.home / "batch"
        result = embedded.cli("stamp", *map(str, files), "--rect", RECT, "--out", str(out))
        assert result.code == 1, result.stdout + result.stderr
        assert "broken.pdf: FAILED: INVALID_ARGUMENT" in result.stderr
        assert sorted(p.name for p in out.iterdir()) == [
            "002-trivial-libre-office-writer.pdf",
            "jpeg.pdf",
        ]
        for line in result.stdout.splitlines():
            assert " -> " in line and len(line.split(": ")[1].split(" ")[0]) == 22
        after = _balance(embedded, None)
        assert after["consumed"] == before["consumed"] + 2
        assert after["available"] == before["available"] - 2

    def test_giving_up_waiting_then_running_again_picks_up_the_same_stamp(
        self, embedded: EmbeddedPlatform
    ) -> None:
        assert embedded.cli("quota", "buy", "1").code == 0
        before = _balance(embedded, None)
        out = embedded.home / "patient"
        args = ("stamp", str(CORPUS / "pdfkit.pdf"), "--rect", RECT, "--out", str(out), "--json")
        impatient = embedded.cli(*args, "--wait", "0")
        assert impatient.code == 1
        (first,) = impatient.json()["results"]  # type: ignore[misc]
        assert "run the same command again" in first["error"]
        again = embedded.cli(*args)
        assert again.code == 0, again.stdout + again.stderr
        (second,) = again.json()["results"]  # type: ignore[misc]
        assert second["job_id"] == first["job_id"] and second["serial"] == first["serial"]
        assert _balance(embedded, None)["consumed"] == before["consumed"] + 1

    def test_status_fails_when_nothing_serves(self, tmp_path: Path) -> None:
        idle = EmbeddedPlatform(tmp_path)
        idle.env = {"METERAI_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
        assert idle.cli("admin", "init-pki").code == 0
        result = idle.cli("--server", "127.0.0.1:1", "status", timeout=60)
        assert result.code == 3
        assert "UNREACHABLE" in result.stdout

    def test_a_client_without_the_platform_ca_is_told_where_to_get_it(self, tmp_path: Path) -> None:
        idle = EmbeddedPlatform(tmp_path)
        idle.env = {"METERAI_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
        result = idle.cli("--server", "127.0.0.1:1", "status", timeout=60)
        assert result.code == 1
        assert "--ca" in result.stderr and "ca.crt" in result.stderr

    def test_ctrl_c_stops_cleanly(self, tmp_path: Path) -> None:
        import signal

        platform = EmbeddedPlatform(tmp_path).start()
        platform.stop("up", signal.SIGINT)
        assert platform.processes["up"].returncode == 0, platform.log("up")
        assert "meterai stopped." in platform.log("up")


@pytest.fixture(scope="module")
def keys(distributed: DistributedPlatform) -> tuple[str, str]:
    """(reseller key, operator key), created with the operator's admin command."""
    reseller = distributed.cli(
        "admin", "create-reseller", f"E2E Reseller {uuid.uuid4().hex[:8]}", "--json"
    )
    operator = distributed.cli("admin", "create-reseller", "ops", "--operator", "--json")
    assert reseller.code == 0 and operator.code == 0, reseller.stderr + operator.stderr
    return str(reseller.json()["api_key"]), str(operator.json()["api_key"])


class TestDistributedPlatform:
    def test_buy_stamp_verify_across_processes(
        self, distributed: DistributedPlatform, keys: tuple[str, str]
    ) -> None:
        api_key, operator_key = keys
        _buy_three(distributed, api_key, operator_key)
        _stamp_and_check(distributed, api_key)

    def test_bad_requests_get_precise_errors_and_charge_nothing(
        self, distributed: DistributedPlatform, keys: tuple[str, str]
    ) -> None:
        _bad_requests_charge_nothing(distributed, keys[0])

    def test_no_quota_is_a_failed_precondition(self, distributed: DistributedPlatform) -> None:
        broke = distributed.cli(
            "admin", "create-reseller", f"Broke {uuid.uuid4().hex[:8]}", "--json"
        )
        api_key = str(broke.json()["api_key"])
        result = distributed.cli(
            "stamp",
            str(DOCUMENT),
            "--rect",
            RECT,
            "--out",
            str(distributed.home / "x"),
            api_key=api_key,
        )
        assert result.code == 1 and "FAILED_PRECONDITION" in result.stderr, result.stderr
        assert _balance(distributed, api_key)["available"] in (0, None)

    def test_ledger_reconciles_afterwards(self, distributed: DistributedPlatform) -> None:
        result = distributed.cli("admin", "reconcile")
        assert result.code == 0, result.stdout + result.stderr
