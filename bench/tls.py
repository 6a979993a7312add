"""What TLS costs a gRPC call on this machine: the same server and payload, plaintext and TLS.

Baseline in the same run: the plaintext channel. Each mode runs a closed loop of unary calls
on one persistent channel (as every platform client keeps), carrying a small request (a
balance query) and a 100 KB request (a one-page document upload), and reports calls per
second and the CPU both ends spent per call (client and server share this process). The
handshake is paid once per channel, so what remains per call is symmetric encryption.

Run: ``.venv/bin/python bench/tls.py`` (part of ``make bench``); results in
``bench/results/tls.json``.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "tls.json"
SECONDS = 3.0
PAYLOADS = {"small": 200, "upload_100kb": 100 * 1024}
_METHOD = "/bench.Echo/Call"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server(tls: Any) -> tuple[grpc.Server, int]:
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo",
        {"Call": grpc.unary_unary_rpc_method_handler(lambda request, context: b"ok")},
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(4),
        handlers=[handler],
        options=[("grpc.max_receive_message_length", 4 * 1024 * 1024)],
    )
    port = (
        server.add_insecure_port("127.0.0.1:0")
        if tls is None
        else server.add_secure_port("127.0.0.1:0", tls.credentials())
    )
    server.start()
    return server, port


def _measure(channel: grpc.Channel, payload: bytes) -> dict[str, float]:
    call = channel.unary_unary(_METHOD)
    for _ in range(50):
        call(payload, timeout=10)
    calls, cpu_start, start = 0, _cpu(), time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        call(payload, timeout=10)
        calls += 1
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu_start
    return {
        "calls_per_s": round(calls / elapsed, 1),
        "latency_us": round(elapsed / calls * 1e6, 1),
        "cpu_us_per_call": round(cpu / calls * 1e6, 1),
    }


def run() -> dict[str, Any]:
    from meterai_common.tls import ensure_platform_tls, secure_channel

    files = ensure_platform_tls(Path(tempfile.mkdtemp(prefix="meterai-tls-bench-")))
    results: dict[str, Any] = {}
    for mode in ("plaintext", "tls"):
        server_tls = None if mode == "plaintext" else files.server("stamping")
        client_tls = None if mode == "plaintext" else files.client()
        server, port = _server(server_tls)
        try:
            with secure_channel(f"127.0.0.1:{port}", client_tls) as channel:
                results[mode] = {
                    name: _measure(channel, b"x" * size) for name, size in PAYLOADS.items()
                }
        finally:
            server.stop(0)
    results["tls_over_plaintext"] = {
        name: {
            "calls_per_s": round(
                results["tls"][name]["calls_per_s"] / results["plaintext"][name]["calls_per_s"], 3
            ),
            "extra_cpu_us_per_call": round(
                results["tls"][name]["cpu_us_per_call"]
                - results["plaintext"][name]["cpu_us_per_call"],
                1,
            ),
        }
        for name in PAYLOADS
    }
    return results


def main() -> None:
    results = run()
    print(f"{'payload':<14} {'plaintext calls/s':>18} {'TLS calls/s':>12} {'ratio':>6} "
          f"{'extra CPU/call':>15}")  # fmt: skip
    for name in PAYLOADS:
        plain, tls = results["plaintext"][name], results["tls"][name]
        ratio = results["tls_over_plaintext"][name]
        print(
            f"{name:<14} {plain['calls_per_s']:>18,.0f} {tls['calls_per_s']:>12,.0f} "
            f"{ratio['calls_per_s']:>6.2f} {ratio['extra_cpu_us_per_call']:>12.1f} us"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results in {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
