"""Verification under load: serial pages and documents per second, and what a flood of
verifications costs a reseller's submit.

The embedded platform (``meterai up``, one process: stamping, verification and its web site)
runs on a fresh home; one form document is stamped through the CLI. Phases:

1. **Serial pages per second**: ``GET /v/<serial>`` over HTTPS with keep-alive from 8 client
   threads. The site's per-client rate limit would cap one client at 20 pages/s, so this phase
   runs a second site process on the same database with the guard's rates lifted (the in-flight
   cap and the sandbox stay): the figure is the site's capacity, not the limit.
2. **Documents verified per second**: the stamped document (genuine) through
   ``POST /api/v1/documents:verify`` on that site, and through gRPC ``VerifyDocument`` on the
   platform, 4 callers each; every answer is checked to be ``genuine``.
3. **A reseller's submit while verification is flooded**: ``SubmitDocument`` at 10 per second
   for the phase, first on a quiet platform, then while another process's 6 threads send gRPC
   ``VerifyDocument`` with a hostile one-million-object PDF (the attack of the issue) and 2 with
   the genuine document, none waiting between calls. Reported: submit p50/p99, verifications
   answered and refused, and the platform process's RSS before and after.

Run: ``.venv/bin/python bench/verify.py`` (about 2 minutes; writes ``bench/results/verify.json``)
or ``--quick`` (short phases, no JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import grpc
import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc  # noqa: E402
from meterai.verify.v1 import verify_pb2, verify_pb2_grpc  # noqa: E402
from meterai_common.tls import TlsFiles, secure_channel  # noqa: E402

__all__ = ["main"]

RESULTS = Path(__file__).parent / "results" / "verify.json"
SUBMIT_RATE_PER_S = 10.0
GRPC_OPTIONS = [("grpc.max_send_message_length", 64 * 2**20)]


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(percent / 100 * len(ordered)) - 1)]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _serve_site(home: str, ready: Any) -> None:
    """A second site process on the platform's database, rates lifted (phase 1 and 2)."""
    from meterai_common.config import Settings
    from meterai_common.db import create_engine
    from meterai_verify.web.app import WebConfig
    from meterai_verify.web.guard import GuardLimits
    from meterai_verify.web.server import start_web

    settings = Settings.from_env({"WEB_PORT": "0"}, home=Path(home))
    limits = GuardLimits(lookup_rate=1e6, lookup_burst=10**6, verify_rate=1e6, verify_burst=10**6)
    runtime = start_web(settings, create_engine(settings.database_url), WebConfig(guard=limits))
    ready.put(runtime.port)
    threading.Event().wait()


def _flood(home: str, port: int, genuine: bytes, ready: Any, stop: Any, done: Any) -> None:
    """Eight senders of ``VerifyDocument`` without pause (six with a hostile one-million-object
    PDF, two with the genuine document) until ``stop``; puts the answered and refused counts."""
    from tests.integration.verify.hostile_pdfs import million_objects

    channel = secure_channel(
        f"127.0.0.1:{port}", TlsFiles(Path(home) / "tls").client(), GRPC_OPTIONS
    )
    verify = verify_pb2_grpc.VerificationServiceStub(channel)
    hostile = verify_pb2.VerifyDocumentRequest(pdf=million_objects())
    honest = verify_pb2.VerifyDocumentRequest(pdf=genuine)
    counts = [[0, 0] for _ in range(8)]

    def send(index: int) -> None:
        request = hostile if index < 6 else honest
        while not stop.is_set():
            try:
                verify.VerifyDocument(request, timeout=60)
                counts[index][0] += 1
            except grpc.RpcError:
                counts[index][1] += 1

    senders = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for sender in senders:
        sender.start()
    ready.set()
    for sender in senders:
        sender.join(90)
    done.put({"answered": sum(c[0] for c in counts), "refused": sum(c[1] for c in counts)})


def _for(seconds: float, threads: int, work: Callable[[int], bool]) -> tuple[int, int]:
    """Run ``work(thread)`` in ``threads`` threads for ``seconds``: (successes, failures)."""
    counts = [[0, 0] for _ in range(threads)]
    deadline = time.monotonic() + seconds

    def loop(index: int) -> None:
        while time.monotonic() < deadline:
            counts[index][0 if work(index) else 1] += 1

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _submits(
    stub: stamping_pb2_grpc.StampingServiceStub, key: str, pdf: bytes, seconds: float
) -> dict[str, Any]:
    """Open loop at SUBMIT_RATE_PER_S: latency p50/p99 in ms (refusals included), outcomes."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def one() -> None:
        request = stamping_pb2.SubmitDocumentRequest(
            pdf=pdf,
            placement=stamping_pb2.Placement(
                page=1, rect=stamping_pb2.Rect(x0=380, y0=60, x1=520, y1=200)
            ),
            metadata=stamping_pb2.DocumentMetadata(document_type="Surat Lamaran"),
            idempotency_key=uuid.uuid4().hex,
            filename="bench.pdf",
        )
        started = time.perf_counter()
        try:
            stub.SubmitDocument(request, metadata=(("x-api-key", key),), timeout=30)
            outcome = "accepted"
        except grpc.RpcError as error:
            outcome = error.code().name
        with lock:
            latencies.append((time.perf_counter() - started) * 1000)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    callers = []
    start = time.monotonic()
    for n in range(int(seconds * SUBMIT_RATE_PER_S)):
        time.sleep(max(0.0, start + n / SUBMIT_RATE_PER_S - time.monotonic()))
        caller = threading.Thread(target=one)
        caller.start()
        callers.append(caller)
    for caller in callers:
        caller.join()
    return {
        "p50": round(_percentile(latencies, 50), 1),
        "p99": round(_percentile(latencies, 99), 1),
        "outcomes": outcomes,
    }


def main() -> None:
    from tests.support.altered_pdfs import form_pdf
    from tests.support.launch import EmbeddedPlatform

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases, no JSON")
    args = parser.parse_args()
    seconds = 4.0 if args.quick else 15.0
    results: dict[str, Any] = {"phase_seconds": seconds}
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        home = Path(tmp)
        platform = EmbeddedPlatform(home).start()
        site: BaseProcess | None = None
        try:
            needed = int(seconds * SUBMIT_RATE_PER_S) * 2 + 10
            assert platform.cli("quota", "buy", str(needed)).code == 0
            (home / "letter.pdf").write_bytes(form_pdf())
            stamped = platform.cli(
                "stamp", str(home / "letter.pdf"), "--rect", "380,60,520,200",
                "--out", str(home / "out"), "--json",
            )  # fmt: skip
            assert stamped.code == 0, stamped.stdout + stamped.stderr
            serial = stamped.json()["results"][0]["serial"]  # type: ignore[index]
            document = (home / "out" / "letter.pdf").read_bytes()
            ports = json.loads((home / "platform.json").read_text())["ports"]
            key = json.loads((home / "credentials.json").read_text())["api_key"]
            tls = TlsFiles(home / "tls")
            context = ssl.create_default_context(cafile=str(tls.ca_certificate))

            spawn = multiprocessing.get_context("spawn")
            ready = spawn.Queue()
            site = spawn.Process(target=_serve_site, args=(str(home), ready))
            site.start()
            base = f"https://127.0.0.1:{ready.get(timeout=60)}"
            clients = [httpx.Client(base_url=base, verify=context) for _ in range(8)]

            def page(i: int) -> bool:
                answer = clients[i].get(f"/v/{serial}")
                return answer.status_code == 200 and 'data-verdict="issued"' in answer.text

            ok, failed = _for(seconds, 8, page)
            results["serial_pages_per_s"] = round(ok / seconds, 1)
            results["serial_page_failures"] = failed

            def upload(i: int) -> bool:
                answer = clients[i].post(
                    "/api/v1/documents:verify",
                    content=document,
                    headers={"content-type": "application/pdf"},
                    timeout=60,
                )
                return answer.status_code == 200 and answer.json()["verdict"] == "genuine"

            ok, failed = _for(seconds, 4, upload)
            results["site_documents_verified_per_s"] = round(ok / seconds, 1)
            results["site_verify_refused_or_failed"] = failed

            verify_channel = secure_channel(
                f"127.0.0.1:{ports['verify']}", tls.client(), GRPC_OPTIONS
            )
            verify = verify_pb2_grpc.VerificationServiceStub(verify_channel)
            genuine_request = verify_pb2.VerifyDocumentRequest(pdf=document)

            def grpc_verify(_: int) -> bool:
                try:
                    answer = verify.VerifyDocument(genuine_request, timeout=60)
                except grpc.RpcError:
                    return False
                return bool(answer.genuine)

            ok, failed = _for(seconds, 4, grpc_verify)
            results["grpc_documents_verified_per_s"] = round(ok / seconds, 1)
            results["grpc_verify_refused_or_failed"] = failed

            stamping = stamping_pb2_grpc.StampingServiceStub(
                secure_channel(f"127.0.0.1:{ports['stamping']}", tls.client(), GRPC_OPTIONS)
            )
            pdf = form_pdf()
            results["submit_quiet_ms"] = _submits(stamping, key, pdf, seconds)

            pid = platform.processes["up"].pid
            rss_before = _rss_mb(pid)
            # The flood comes from a process of its own, as it would from other machines: in
            # this one its eight senders would hold the GIL the submit client needs, and the
            # figure would measure the benchmark, not the platform.
            flood_ready, flood_stop, flood_done = spawn.Event(), spawn.Event(), spawn.Queue()
            flooder = spawn.Process(
                target=_flood,
                args=(str(home), ports["verify"], document, flood_ready, flood_stop, flood_done),
            )
            flooder.start()
            assert flood_ready.wait(60), "the flood process did not start"
            time.sleep(1.0)
            results["submit_flooded_ms"] = _submits(stamping, key, pdf, seconds)
            rss_peak = _rss_mb(pid)
            flood_stop.set()
            flood_counts = flood_done.get(timeout=120)
            flooder.join(30)
            results["flood_verifications"] = flood_counts
            results["platform_rss_mb"] = {
                "before_flood": round(rss_before, 1),
                "during_flood": round(rss_peak, 1),
                "after_flood": round(_rss_mb(pid), 1),
            }
        finally:
            if site is not None:
                site.kill()
            platform.stop()
    for name, value in results.items():
        print(f"{name:34} {value}")
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
