"""The platform's timestamp authority as its own process, and a fault injector in front of it.

:class:`TsaProcess` runs ``python -m meterai_signing.tsa_service`` (certomancer's responder
over the test PKI's TSA certificate, which also publishes the PKI's CRLs and answers OCSP;
:func:`revocation_pki` makes a PKI whose certificates point at the port it will listen on).
:class:`TsaFaults` is an HTTP relay the signing service
is pointed at instead: it forwards every request to the real authority, or, on demand, answers
slowly, answers garbage, or is down, so tests can take the authority away mid-batch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from meterai_signing.pki import KeyType, TestPki, generate_test_pki
from tests.support.launch import free_port_block

__all__ = ["TsaFaults", "TsaProcess", "revocation_pki", "revocation_port"]


def revocation_pki(directory: Path, key_type: KeyType = "rsa2048") -> TestPki:
    """A test PKI whose certificates name CRLs and OCSP responders on a port free right now;
    start :class:`TsaProcess` on :func:`revocation_port` to serve them."""
    port = free_port_block(1)
    return generate_test_pki(
        directory, key_type=key_type, revocation_url=f"http://127.0.0.1:{port}"
    )


def revocation_port(pki: TestPki) -> int:
    """The port the PKI's revocation URLs name."""
    assert pki.revocation_url is not None, "this PKI publishes no revocation data"
    return int(pki.revocation_url.rsplit(":", 1)[1])


class TsaProcess:
    """``meterai_signing.tsa_service`` in a child process on a free port."""

    def __init__(self, pki_dir: Path, log: Path, port: int = 0) -> None:
        self._pki_dir, self._log_path, self._port = pki_dir, log, port
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> TsaProcess:
        self._log_path.write_text("")  # an old "serving on" line must not be read as this one's
        log = self._log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meterai_signing.tsa_service",
                "--pki",
                str(self._pki_dir),
                "--port",
                str(self._port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self._log_path.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith("tsa serving on "):
                    self.url = line.removeprefix("tsa serving on ").strip()
                    self._port = int(self.url.rsplit(":", 1)[1].strip("/"))
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the TSA did not start:\n{self._log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)

    def restart(self) -> TsaProcess:
        """Start again on the same port (so its URL stays valid)."""
        self.stop()
        self._log_path.write_text("")
        return self.start()


class TsaFaults:
    """An HTTP relay to ``upstream`` whose ``mode`` tests switch: ``relay``, ``slow``,
    ``garbage`` or ``down`` (connection closed without an answer)."""

    def __init__(self, upstream: str, slow_s: float = 3.0) -> None:
        self.upstream = upstream
        self.mode = "relay"
        self.slow_s = slow_s
        self.requests = 0
        faults = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = -1

            def do_POST(self) -> None:
                faults.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = faults.mode
                if mode == "down":
                    self.close_connection = True
                    return
                if mode == "garbage":
                    self._answer(200, b"\x30\x03\x02\x01\x00 this is no TimeStampResp")
                    return
                if mode == "slow":
                    time.sleep(faults.slow_s)
                request = urllib.request.Request(
                    faults.upstream,
                    data=body,
                    headers={"Content-Type": "application/timestamp-query"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as reply:
                        self._answer(200, reply.read())
                except OSError:
                    self._answer(502, b"upstream TSA unreachable")

            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> TsaFaults:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
