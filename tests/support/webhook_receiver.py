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
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "webhooks"))
from verify import InvalidWebhook, verify

_lock = threading.Lock()


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
