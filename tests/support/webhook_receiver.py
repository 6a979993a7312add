"""A webhook receiver for tests, run as its own process: HTTPS with a certificate of the test
PKI, every request checked with the example verifier (``examples/webhooks/verify.py``).

Behaviour per path is read from a JSON file on every request, so a test switches it while
the process runs: ``ok`` (200), ``fail`` (500) or ``slow`` (answers 200 after
``--slow-s``, longer than the platform's time-out). A request whose signature does not verify
gets 400 whatever the mode. Every request is appended to ``--log`` as one JSON line: the
path, the mode, whether it verified, the headers and the raw body.

    python -m tests.support.webhook_receiver --port P --cert web.crt --key web.key \
        --secrets secrets.json --modes modes.json --log requests.jsonl
"""

from __future__ import annotations

import argparse
import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from meterai_common.tls import ensure_platform_tls
from tests.support.launch import free_port_block

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "webhooks"))
from verify import InvalidWebhook, verify

__all__ = ["Receiver", "serving_receiver"]

ROOT = Path(__file__).resolve().parents[2]
_lock = threading.Lock()


@dataclass
class Receiver:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    known: list[str] = field(default_factory=list)
    """Every secret it was ever told to trust."""

    @property
    def log(self) -> Path:
        return self.directory / "requests.jsonl"

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def modes(self, **by_path: str) -> None:
        self._write("modes.json", {f"/{path}": mode for path, mode in by_path.items()})

    def trust(self, *secrets: str) -> None:
        self.known.extend(secrets)
        self._write("secrets.json", list(secrets))

    def _write(self, name: str, data: object) -> None:
        scratch = self.directory / f".{name}"
        scratch.write_text(json.dumps(data))
        scratch.replace(self.directory / name)

    def start(self) -> None:
        tls = self.directory / "tls"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.webhook_receiver",
                "--port",
                str(self.port),
                "--cert",
                str(tls / "web.crt"),
                "--key",
                str(tls / "web.key"),
                "--secrets",
                str(self.directory / "secrets.json"),
                "--modes",
                str(self.directory / "modes.json"),
                "--log",
                str(self.log),
                "--slow-s",
                "1.5",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == b"receiver ready"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def accepted(self, path: str) -> list[dict[str, Any]]:
        """Requests to ``path`` that verified and were answered 200, in arrival order."""
        return [
            r
            for r in self.requests()
            if r["path"] == f"/{path}" and r["valid"] and r["mode"] in ("ok",)
        ]


@contextmanager
def serving_receiver(directory: Path, **modes: str) -> Iterator[Receiver]:
    """A receiver serving in ``modes`` (path → behaviour), its certificate from a platform CA
    made in ``directory``, knowing no secret yet (add them with :meth:`Receiver.trust`);
    stopped on exit."""
    ensure_platform_tls(directory / "tls")
    receiver = Receiver(free_port_block(1), directory)
    receiver.modes(**modes)
    receiver.trust()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--secrets", type=Path, required=True, help="JSON list of whsec_…")
    parser.add_argument("--modes", type=Path, required=True, help="JSON object path → mode")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--slow-s", type=float, default=2.0)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            mode = _read_json(args.modes, {}).get(self.path, "ok")
            try:
                event = verify(body, headers, _read_json(args.secrets, []))
                valid, reason = True, ""
            except InvalidWebhook as error:
                event, valid, reason = {}, False, str(error)
            record = {
                "at": time.time(),
                "path": self.path,
                "mode": mode,
                "valid": valid,
                "reason": reason,
                "type": event.get("type", ""),
                "data": event.get("data", {}),
                "headers": headers,
                "body": body.decode(errors="replace"),
            }
            with _lock, args.log.open("a") as log:
                log.write(json.dumps(record) + "\n")
            if not valid:
                self._answer(400)
            elif mode == "fail":
                self._answer(500)
            elif mode == "slow":
                time.sleep(args.slow_s)
                self._answer(200)
            else:
                self._answer(200)

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the platform gave up waiting (the slow mode)

        def log_message(self, format: str, *values: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("receiver ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
