"""Runs the verification site: uvicorn on its own thread, TLS by default like every port.

The certificate is the platform's ``web`` identity (``$METERAI_TLS_DIR/web.crt``); in
production a public certificate is mounted there, since phones do not trust the platform CA.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

import uvicorn
from sqlalchemy import Engine

from meterai_common.config import Settings
from meterai_verify.bootstrap import trust_roots_for
from meterai_verify.sandbox import Sandbox
from meterai_verify.web.app import WebConfig, create_app
from meterai_verify.web.guard import GuardLimits

__all__ = ["WebRuntime", "start_web"]

log = logging.getLogger(__name__)


@dataclass
class WebRuntime:
    """A serving site: its port, and how to stop it."""

    port: int
    scheme: str
    _server: uvicorn.Server
    _thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self, grace: float = 5.0, drain_delay: float = 0.0) -> None:
        self._server.should_exit = True
        self._thread.join(grace + drain_delay + 5.0)


def web_config(settings: Settings) -> WebConfig:
    """The site's paths and limits from the platform's settings."""
    return WebConfig(
        serial_prefix=urlparse(settings.verify_base_url).path or "/",
        guard=GuardLimits(max_upload_bytes=settings.max_document_bytes),
    )


def start_web(settings: Settings, db: Engine, config: WebConfig | None = None) -> WebRuntime:
    """Bind ``settings.ports.web`` (0: any free port) and serve until :meth:`WebRuntime.stop`."""
    sandbox = Sandbox()
    sandbox.warm()
    app = create_app(db, trust_roots_for(settings), sandbox, config or web_config(settings))
    listener = socket.socket(socket.AF_INET6 if ":" in settings.bind_host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((settings.bind_host, settings.ports.web))
    listener.listen(256)
    tls: dict[str, str] = {}
    if not settings.insecure:
        files = settings.tls_files
        settings.server_tls("web")  # fails with how-to-fix when the files are missing
        tls = {
            "ssl_certfile": str(files.certificate("web")),
            "ssl_keyfile": str(files.key("web")),
        }
    else:
        log.warning("web: plaintext HTTP (METERAI_INSECURE=1): for a development machine only")
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=5,
            limit_concurrency=512,
            h11_max_incomplete_event_size=64 * 1024,
            **tls,  # type: ignore[arg-type]
        )
    )
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[listener])), name="web", daemon=True
    )
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    if not server.started:
        raise RuntimeError("the verification site did not start (see the log)")
    port = listener.getsockname()[1]
    return WebRuntime(port, "http" if settings.insecure else "https", server, thread)
