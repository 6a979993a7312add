"""Who may ask how much: per-client rate limits, a cap on verifications in flight, upload size.

Public endpoints are open to anyone, so each client (by address) gets a token bucket per kind
of request, verifications in flight are capped for the whole process, and an upload's size is
judged from its ``Content-Length`` before a byte of the body is read (the HTTP server, h11,
delivers no more than that length, and the handlers count again). Refusals are cheap and
say when to come back: 429 with ``Retry-After``, 413 for an oversized upload.

:class:`Guard` is a plain ASGI middleware, so it refuses before the framework parses anything.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from meterai_verify.rate_limits import TokenBuckets

__all__ = ["Guard", "GuardLimits", "InflightCap", "TokenBuckets"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class GuardLimits:
    lookup_rate: float = 20.0
    """Serial pages and API reads per second per client."""
    lookup_burst: int = 60
    verify_rate: float = 1.0
    """Document uploads per second per client."""
    verify_burst: int = 10
    verify_inflight: int = 4
    """Uploads being read or verified at once, for the whole process."""
    max_upload_bytes: int = 20 * 1024 * 1024
    max_clients: int = 100_000
    """Buckets kept; the least recently seen client is forgotten beyond it (memory bound)."""


class InflightCap:
    """At most ``limit`` holders at once; no waiting."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self._held >= self._limit:
                return False
            self._held += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._held -= 1


def _is_upload(scope: Scope) -> bool:
    return scope.get("method") == "POST"


async def _refuse(send: Send, status: int, text: str, retry_after: float | None = None) -> None:
    headers = [(b"content-type", b"application/json; charset=utf-8")]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    body = ('{"detail": "' + text + '"}').encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware applying :class:`GuardLimits` to every HTTP request."""

    def __init__(self, app: App, limits: GuardLimits) -> None:
        self.app = app
        self.limits = limits
        self.lookups = TokenBuckets(limits.lookup_rate, limits.lookup_burst, limits.max_clients)
        self.uploads = TokenBuckets(limits.verify_rate, limits.verify_burst, limits.max_clients)
        self.inflight = InflightCap(limits.verify_inflight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if not _is_upload(scope):
            wait = self.lookups.take(client)
            if wait:
                await _refuse(send, 429, "too many requests: slow down", wait)
                return
            await self.app(scope, receive, send)
            return
        await self._upload(scope, receive, send, client)

    async def _upload(self, scope: Scope, receive: Receive, send: Send, client: str) -> None:
        cap = self.limits.max_upload_bytes
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is None or not length.isdigit():
            await _refuse(send, 411, "send the upload with a Content-Length")
            return
        # Multipart framing adds a little to the document itself.
        if int(length) > cap + 64 * 1024:
            await _refuse(send, 413, f"upload larger than {cap} bytes")
            return
        wait = self.uploads.take(client)
        if wait:
            await _refuse(send, 429, "too many uploads: slow down", wait)
            return
        if not self.inflight.enter():
            await _refuse(send, 429, "verification is busy: try again shortly", 2)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight.leave()
