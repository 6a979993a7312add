"""An integrator's first day on the embedded platform (``meterai up`` as its own process): the
CLI finds the platform from any folder, stamps whole folders and glob patterns, says when a
document was stamped before, and a second ``meterai up`` leaves the running one alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meterai_client import Client, MeteraiError
from tests.support.channels import platform_channel
from tests.support.launch import METERAI, CliResult, EmbeddedPlatform
from tests.unit.stamping.samples import PageSpec, build_pdf

RECT = "300,60,440,200"
NODE_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node" / "stamp.js"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPlatform]:
    platform = EmbeddedPlatform(tmp_path_factory.mktemp("integrator"))
    platform.start()
    assert platform.cli("quota", "buy", "20").code == 0
    yield platform
    platform.stop()


def _run(
    platform: EmbeddedPlatform, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> CliResult:
    """The CLI as a user runs it from ``cwd``, without METERAI_HOME."""
    environment = {k: v for k, v in (env or platform.env).items() if k != "METERAI_HOME"}
    result = subprocess.run(
        [METERAI, *args], env=environment, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return CliResult(result.returncode, result.stdout, result.stderr)


def test_a_second_meterai_up_says_so_and_leaves_the_running_platform_alone(
    embedded: EmbeddedPlatform,
) -> None:
    recorded = (embedded.home / "platform.json").read_text()
    second = embedded.cli("up", timeout=60)
    assert second.code != 0
    assert "already running" in second.stderr, second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    assert (embedded.home / "platform.json").read_text() == recorded
    assert embedded.cli("status").code == 0


def test_a_second_platform_on_ports_in_use_is_told_so_without_a_traceback(
    embedded: EmbeddedPlatform, tmp_path: Path
) -> None:
    ports = json.loads((embedded.home / "platform.json").read_text())["ports"]
    env = {
        **embedded.env,
        "METERAI_HOME": str(tmp_path / "other"),
        "QUOTA_PORT": str(ports["quota"]),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    result = subprocess.run(
        [METERAI, "up"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode != 0
    assert "cannot bind" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert embedded.cli("status").code == 0


def test_meterai_up_records_its_home_for_the_cli_of_any_folder(
    embedded: EmbeddedPlatform, tmp_path: Path
) -> None:
    config = json.loads((embedded.home / "config" / "meterai" / "config.json").read_text())
    assert Path(config["home"]) == embedded.home
    balance = _run(embedded, "quota", "balance", "--json", cwd=tmp_path)
    assert balance.code == 0, balance.stderr
    assert "available" in balance.json()


def test_without_a_key_the_cli_says_where_it_looked_and_how_to_point_it(
    embedded: EmbeddedPlatform, tmp_path: Path
) -> None:
    env = {**embedded.env, "XDG_CONFIG_HOME": str(tmp_path / "nothing-recorded")}
    ports = json.loads((embedded.home / "platform.json").read_text())["ports"]
    result = _run(
        embedded,
        "--server",
        f"127.0.0.1:{ports['quota']}",
        "--ca",
        str(embedded.home / "tls" / "ca.crt"),
        "quota",
        "balance",
        cwd=tmp_path,
        env=env,
    )
    assert result.code == 1
    assert "missing API key" in result.stderr
    assert "--home" in result.stderr and "credentials.json" in result.stderr, result.stderr


def test_a_folder_and_a_glob_are_stamped_recursively_and_a_repeat_is_not_charged(
    embedded: EmbeddedPlatform, tmp_path: Path
) -> None:
    scans = tmp_path / "scans"
    (scans / "2024" / "09").mkdir(parents=True)
    for index, folder in enumerate([scans, scans / "2024", scans / "2024" / "09"]):
        (folder / f"letter-{index}.pdf").write_bytes(build_pdf([PageSpec(text=f"Surat {index}")]))
    (scans / "notes.txt").write_text("not a document")
    out = tmp_path / "stamped"
    first = embedded.cli("stamp", f"{scans}/", "--rect", RECT, "--out", str(out))
    assert first.code == 0, first.stdout + first.stderr
    stamped = sorted(str(p.relative_to(out)) for p in out.rglob("*.pdf"))
    assert stamped == ["2024/09/letter-2.pdf", "2024/letter-1.pdf", "letter-0.pdf"]
    assert "stamping" in first.stderr  # the progress bar
    before = embedded.cli("quota", "balance", "--json").json()
    again = embedded.cli(
        "stamp", f"{scans}/**/letter-*.pdf", "--rect", RECT, "--out", str(tmp_path / "again")
    )
    assert again.code == 0, again.stdout + again.stderr
    lines = again.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        assert "already stamped: " in line and "(not charged again)" in line, line
    assert embedded.cli("quota", "balance", "--json").json() == before


def test_a_pattern_that_matches_nothing_is_a_usage_error(
    embedded: EmbeddedPlatform, tmp_path: Path
) -> None:
    result = embedded.cli("stamp", f"{tmp_path}/*.pdf", "--rect", RECT, "--out", str(tmp_path))
    assert result.code == 2 and "no files match" in result.stderr, result.stderr


def test_sigterm_stops_every_service_within_one_drain_period(tmp_path: Path) -> None:
    """Open health watches hold each server's drain to its end: four services draining one
    after the other took four drain periods (20 s); together they take one (5 s)."""
    platform = EmbeddedPlatform(tmp_path)
    platform.start()
    process = platform.processes["up"]
    ports = json.loads((platform.home / "platform.json").read_text())["ports"]
    channels = [
        platform_channel(platform.home, ports[name], identity=identity)
        for name, identity in (
            ("quota", None),
            ("stamping", None),
            ("signing", "stamping"),  # mTLS: platform services only
            ("verify", None),
        )
    ]
    watches = [
        health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
        for channel in channels
    ]
    try:
        for watch in watches:
            next(watch)  # SERVING: the stream is open
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(40)
        assert time.monotonic() - started < 8.0
    finally:
        for channel in channels:
            channel.close()
        platform.stop()


def test_a_reseller_name_in_use_is_refused(embedded: EmbeddedPlatform) -> None:
    first = embedded.cli("admin", "create-reseller", "Toko Sama", "--json")
    assert first.code == 0, first.stderr
    for again in ("Toko Sama", " toko SAMA "):
        second = embedded.cli("admin", "create-reseller", again, "--json")
        assert second.code == 1 and "exists already" in second.stderr, second.stderr
    assert embedded.cli("admin", "create-reseller", "Toko Sama Baru").code == 0


def test_the_cli_says_a_signed_job_cannot_be_cancelled(
    embedded: EmbeddedPlatform, tmp_path: Path
) -> None:
    """Cancelling before signing is proved over the API (``tests/integration/api``); on the
    embedded platform a job is signed within milliseconds, so here it is the signed case."""
    document = tmp_path / "signed.pdf"
    document.write_bytes(build_pdf([PageSpec(text="Sudah")]))
    stamped = embedded.cli(
        "stamp", str(document), "--rect", RECT, "--out", str(tmp_path / "o"), "--json"
    )
    assert stamped.code == 0, stamped.stderr
    (result,) = stamped.json()["results"]  # type: ignore[misc]
    before = embedded.cli("quota", "balance", "--json").json()
    cancelled = embedded.cli("jobs", "cancel", str(result["job_id"]))
    assert cancelled.code == 1
    assert "FAILED_PRECONDITION" in cancelled.stderr and "already signed" in cancelled.stderr
    assert embedded.cli("quota", "balance", "--json").json() == before


def test_the_python_client_stamps_a_file_and_decodes_refusals(
    embedded: EmbeddedPlatform, tmp_path: Path
) -> None:
    document = tmp_path / "client.pdf"
    original = build_pdf([PageSpec(text="Klien")])
    document.write_bytes(original)
    with Client.from_home(embedded.home) as client:
        stamped = client.stamp(document, rect=(300, 60, 440, 200), document_type="Perjanjian")
        assert stamped.pdf.startswith(original) and len(stamped.serial) == 22
        assert not stamped.replayed
        assert client.verify(stamped.pdf).genuine
        again = client.stamp(document, rect=(300, 60, 440, 200), document_type="Perjanjian")
        assert again.replayed and again.serial == stamped.serial
        with pytest.raises(MeteraiError) as refused:
            client.stamp(document, rect=(300, 60, 4400, 200))
        assert refused.value.reason == "RECT_OUTSIDE_PAGE"
        assert refused.value.field_violations[0][0] == "placement.rect"
        assert not refused.value.retryable


def test_the_node_example_runs_the_whole_flow_from_the_protos(
    embedded: EmbeddedPlatform, tmp_path: Path
) -> None:
    """``examples/node/stamp.js`` (``make test-setup`` installs Node.js and its packages)."""
    document = tmp_path / "node.pdf"
    original = build_pdf([PageSpec(text="Node")])
    document.write_bytes(original)
    out = tmp_path / "node-stamped.pdf"
    result = subprocess.run(
        ["node", str(NODE_EXAMPLE), str(document), str(out)],
        env={**embedded.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["state"] == "JOB_STATE_DONE" and report["genuine"] and report["replayed"]
    assert report["refusal"] == {
        "code": "INVALID_ARGUMENT",
        "reason": "RECT_OUTSIDE_PAGE",
        "field": "placement.rect",
    }
    assert out.read_bytes().startswith(original)


def test_a_cli_without_a_platform_file_says_it_used_the_default_ports(tmp_path: Path) -> None:
    home = tmp_path / "nothing-runs-here"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("METERAI_")},
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    result = subprocess.run(
        [
            METERAI,
            "--home",
            str(home),
            "--insecure",
            "--api-key",
            "mtk_x",
            "--timeout",
            "2",
            "quota",
            "balance",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "default ports" in result.stderr and "platform.json" in result.stderr, result.stderr
