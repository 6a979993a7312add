"""Operators see the platform move: ``meterai up`` serves Prometheus metrics at the address
it writes into ``platform.json``, and a stamp and a refusal move the counters and histograms.

The platform runs with a reseller rate of one submission a second and a burst of one, so of
two submissions sent at the same moment one is admitted and the other refused by the rate limit.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from tests.support.brokers import private_vhost
from tests.support.channels import platform_channel
from tests.support.corpus import CORPUS
from tests.support.databases import migrated_postgres_database
from tests.support.launch import DistributedPlatform, EmbeddedPlatform, _Platform, free_port_block

DOCUMENT = CORPUS / "pdflatex-4-pages.pdf"
RECT = "380,60,520,200"
SUBMIT = "/meterai.stamping.v1.StampingService/SubmitDocument"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPlatform]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("METERAI_RESELLER_RATE", "1")
        patch.setenv("METERAI_RESELLER_BURST", "1")
        patch.delenv("METRICS_PORT", raising=False)
        platform = EmbeddedPlatform(tmp_path_factory.mktemp("metrics")).start()
    yield platform
    platform.stop()


def _metrics_url(platform: EmbeddedPlatform) -> str:
    url = json.loads((platform.home / "platform.json").read_text())["metrics"]
    assert isinstance(url, str) and url.startswith("http://127.0.0.1:"), url
    return url


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _two_at_once(platform: EmbeddedPlatform) -> list[grpc.StatusCode]:
    """Send two submissions together; return their status codes."""
    api_key = json.loads((platform.home / "credentials.json").read_text())["api_key"]
    port = json.loads((platform.home / "platform.json").read_text())["ports"]["stamping"]
    fields: dict[str, Any] = dict(
        pdf=DOCUMENT.read_bytes(),
        placement=stamping_pb2.Placement(
            page=1, rect=stamping_pb2.Rect(x0=380, y0=60, x1=520, y1=200)
        ),
        metadata=stamping_pb2.DocumentMetadata(document_type="Surat Lamaran"),
        filename=DOCUMENT.name,
    )
    with platform_channel(platform.home, port) as channel:
        stub = stamping_pb2_grpc.StampingServiceStub(channel)
        calls = [
            stub.SubmitDocument.future(
                stamping_pb2.SubmitDocumentRequest(idempotency_key=f"metrics-{n}", **fields),
                metadata=(("x-api-key", api_key),),
                timeout=30,
            )
            for n in range(2)
        ]
        return sorted((call.code() for call in calls), key=lambda code: code.name)


def test_a_stamp_and_a_refusal_move_the_counters_and_histograms(
    embedded: EmbeddedPlatform,
) -> None:
    url = _metrics_url(embedded)
    assert embedded.cli("quota", "buy", "3").code == 0
    before = _scrape(url)

    stamped = embedded.cli(
        "stamp", str(DOCUMENT), "--rect", RECT, "--out", str(embedded.home / "out"), "--json"
    )
    assert stamped.code == 0, stamped.stdout + stamped.stderr
    time.sleep(1.1)  # the token the CLI's submission took is back
    codes = _two_at_once(embedded)
    assert codes == [grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED], codes
    deadline = time.monotonic() + 30
    while True:  # the second admitted document is stamped in the background
        after = _scrape(url)
        done = _value(after, "meterai_stamps_done_total")
        if done - _value(before, "meterai_stamps_done_total") >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("meterai_submits_admitted_total") == 2
    assert moved("meterai_submits_refused_total", reason="rate_limit") == 1
    assert moved("meterai_stamps_done_total") == 2
    assert moved("meterai_stamps_failed_total") == 0
    assert moved("meterai_grpc_server_handled_total", method=SUBMIT, code="OK") == 2
    assert moved("meterai_grpc_server_handled_total", method=SUBMIT, code="RESOURCE_EXHAUSTED") == 1
    assert moved("meterai_grpc_server_handling_seconds_count", method=SUBMIT) == 3
    assert moved("meterai_grpc_server_handling_seconds_sum", method=SUBMIT) > 0
    buckets = [
        value
        for (name, labels), value in after.items()
        if name == "meterai_grpc_server_handling_seconds_bucket" and ("method", SUBMIT) in labels
    ]
    assert max(buckets) - min(buckets) > 0, "every observation fell in one bucket or none"
    assert moved("meterai_signing_duration_seconds_count") >= 2
    assert _value(after, "meterai_worker_up", kind="embedded") == 1


def test_the_platform_gauges_are_sampled_from_the_database(embedded: EmbeddedPlatform) -> None:
    url = _metrics_url(embedded)
    deadline = time.monotonic() + 20
    while True:
        samples = _scrape(url)
        purchased = _value(samples, "meterai_ledger_units", state="purchased")
        if purchased > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert purchased >= 2, "the ledger gauges were never sampled"
    units = {
        state: _value(samples, "meterai_ledger_units", state=state)
        for state in ("available", "held", "consumed")
    }
    assert sum(units.values()) == purchased, units
    assert ("meterai_backlog_jobs", ()) in samples
    assert ("meterai_outbox_oldest_age_seconds", ()) in samples


def test_a_service_process_serves_metrics_on_metrics_port(tmp_path: Path) -> None:
    """``meterai serve X`` (here verify, which needs no broker) serves ``/metrics`` on
    ``METRICS_PORT`` at ``GRPC_HOST``, and its gRPC calls are counted there."""
    base = free_port_block(2)
    platform = _Platform(tmp_path)
    platform.env = {
        **os.environ,
        "METERAI_HOME": str(tmp_path),
        "VERIFY_PORT": str(base),
        "METRICS_PORT": str(base + 1),
        "GRPC_HOST": "127.0.0.1",
    }
    for variable in ("DATABASE_URL", "AMQP_URL", "METERAI_INSECURE"):
        platform.env.pop(variable, None)
    assert platform.cli("admin", "init-pki").code == 0
    platform._spawn("verify", "serve", "verify")
    url = f"http://127.0.0.1:{base + 1}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                before = _scrape(url)
                break
            except OSError:
                if platform.processes["verify"].poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(platform.log("verify")) from None
                time.sleep(0.2)
        assert _value(before, "meterai_worker_up", kind="verify") == 1
        with platform_channel(tmp_path, base) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=30, wait_for_ready=True
            )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        after = _scrape(url)
        check = "/grpc.health.v1.Health/Check"
        handled = "meterai_grpc_server_handled_total"
        assert _value(after, handled, method=check, code="OK") == (
            _value(before, handled, method=check, code="OK") + 1
        )
    finally:
        platform.stop()


def test_each_worker_kind_serves_metrics_on_metrics_port(
    tmp_path: Path, sqlite_url: str, amqp_url: str
) -> None:
    """``meterai worker finishing`` and ``meterai worker signing`` (the Celery parent) each
    serve ``/metrics`` on their own ``METRICS_PORT`` and report themselves alive."""
    base = free_port_block(2)
    platform = _Platform(tmp_path)
    platform.env = {
        **os.environ,
        "METERAI_HOME": str(tmp_path),
        "DATABASE_URL": sqlite_url,
        "AMQP_URL": amqp_url,
        "GRPC_HOST": "127.0.0.1",
    }
    platform.env.pop("METERAI_INSECURE", None)
    assert platform.cli("admin", "init-pki").code == 0
    kinds = {"finishing-worker": base, "signing-worker": base + 1}
    platform._spawn(
        "finishing-worker",
        "worker",
        "finishing",
        env={**platform.env, "METRICS_PORT": str(kinds["finishing-worker"])},
    )
    platform._spawn(
        "signing-worker",
        "worker",
        "signing",
        "--concurrency",
        "1",
        env={**platform.env, "METRICS_PORT": str(kinds["signing-worker"])},
    )
    try:
        for kind, port in kinds.items():
            deadline = time.monotonic() + 60
            while True:
                try:
                    samples = _scrape(f"http://127.0.0.1:{port}/metrics")
                    break
                except OSError:
                    if platform.processes[kind].poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(platform.log(kind)) from None
                    time.sleep(0.2)
            assert _value(samples, "meterai_worker_up", kind=kind) == 1, kind
            beat = _value(samples, "meterai_worker_heartbeat_timestamp_seconds", kind=kind)
            assert abs(beat - time.time()) < 30, kind
    finally:
        platform.stop()


def test_signing_in_prefork_children_is_observed_on_the_worker_metrics(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The Celery parent's ``/metrics`` adds up what its prefork children measured: a stamp
    signed by ``meterai worker signing --concurrency 2`` shows in its signing latency, once.

    Its own database and virtual host: in the session's shared ones the worker could also
    sign jobs an earlier test left waiting, and the count would not be this stamp's."""
    with ExitStack() as stack:
        database_url = stack.enter_context(migrated_postgres_database())
        amqp_url = stack.enter_context(private_vhost())
        platform = DistributedPlatform(tmp_path_factory.mktemp("prefork"))
        stack.callback(platform.stop)
        platform.start(
            database_url, amqp_url, workers=0, extra_env={"METERAI_PAYMENT_PROVIDER": "dev"}
        )
        _one_stamp_is_observed_once(platform)


def _one_stamp_is_observed_once(platform: DistributedPlatform) -> None:
    port = free_port_block(1)
    platform._spawn(
        "worker",
        "worker",
        "signing",
        "--concurrency",
        "2",
        env={**platform.env, "METRICS_PORT": str(port)},
    )
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 60
    while True:
        try:
            before = _scrape(url)
            break
        except OSError:
            if platform.processes["worker"].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(platform.log("worker")) from None
            time.sleep(0.2)
    reseller = platform.cli("admin", "create-reseller", "Metrics Reseller", "--json")
    assert reseller.code == 0, reseller.stderr
    api_key = str(reseller.json()["api_key"])
    assert platform.cli("quota", "buy", "1", api_key=api_key).code == 0
    stamped = platform.cli(
        "stamp",
        str(DOCUMENT),
        "--rect",
        RECT,
        "--out",
        str(platform.home / "out"),
        api_key=api_key,
    )
    assert stamped.code == 0, stamped.stdout + stamped.stderr
    after = _scrape(url)
    signed = "meterai_signing_duration_seconds_count"
    assert _value(after, signed) == _value(before, signed) + 1
    assert _value(after, "meterai_signing_duration_seconds_sum") > 0
    assert _value(after, "meterai_worker_up", kind="signing-worker") == 1
