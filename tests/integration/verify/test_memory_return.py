"""A flood of large uploads leaves the verification server's memory where it was.

The server runs as ``meterai serve verify`` runs it (``run_service``), in a process of its
own, so its RSS is its own.
Four hostile uploads hold every verification slot while six clients keep sending 6.6 MB
uploads, which the admission interceptor refuses after gRPC has received part of each.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from meterai.verify.v1 import verify_pb2, verify_pb2_grpc
from meterai_common.tls import TlsFiles
from meterai_signing.pki import TestPki
from tests.integration.verify import hostile_pdfs
from tests.support.channels import platform_channel

FLOOD_S = 6.0
KEPT_MB = 120
"""RSS the flood may leave behind: the sandbox's pipes and gRPC's own pools, not the uploads
(with the allocator keeping large buffers it kept 324 MB; with glibc's defaults and
``malloc_trim`` after large requests still 114 MB)."""


def _serve(home: str, tls_dir: str, root: str, port_out: Any) -> None:
    from meterai_cli.processes import run_service
    from meterai_common.config import Settings

    settings = Settings.from_env(
        {"VERIFY_PORT": "0", "METERAI_TLS_DIR": tls_dir, "METERAI_TRUST_ROOTS": root},
        home=Path(home),
    )
    run_service("verify", settings, port_out.put)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_after_a_flood_of_large_uploads_the_server_gives_the_memory_back(
    tmp_path: Path, tls_files: TlsFiles, pki: TestPki
) -> None:
    spawn = multiprocessing.get_context("spawn")
    ports = spawn.Queue()
    server = spawn.Process(
        target=_serve,
        args=(str(tmp_path), str(tls_files.directory), str(pki.root_cert), ports),
    )
    server.start()
    try:
        port = ports.get(timeout=60)
        channel = platform_channel(
            tls_files, port, options=[("grpc.max_send_message_length", 64 * 2**20)]
        )
        verify = verify_pb2_grpc.VerificationServiceStub(channel)
        hostile = verify_pb2.VerifyDocumentRequest(pdf=hostile_pdfs.million_objects())
        time.sleep(3.0)  # the sandbox's fork server imports pyHanko
        before = _rss_mb(server.pid)
        stop = threading.Event()
        refused = [0]

        def send() -> None:
            while not stop.is_set():
                try:
                    verify.VerifyDocument(hostile, timeout=60)
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        refused[0] += 1

        senders = [threading.Thread(target=send) for _ in range(10)]
        for thread in senders:
            thread.start()
        time.sleep(FLOOD_S)
        stop.set()
        for thread in senders:
            thread.join(60)
        time.sleep(1.0)
        after = _rss_mb(server.pid)
        channel.close()
        assert refused[0] > 50, refused  # the flood did reach the interceptor
        assert after - before < KEPT_MB, (before, after)
    finally:
        server.kill()
        server.join(10)
