"""API-key authentication shared by the reseller-facing servicers.

Resellers send their key in the ``x-api-key`` metadata entry. The reseller is always derived
from the key, never from a request field. Resolved keys are cached briefly so a surge of calls
does not turn into a surge of key lookups; a revoked key stops working within the cache TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import grpc

__all__ = ["API_KEY_HEADER", "Authenticator", "MissingApiKey"]

API_KEY_HEADER = "x-api-key"

P = TypeVar("P")


class MissingApiKey(Exception):
    code = "UNAUTHENTICATED"

    def __init__(self) -> None:
        super().__init__(f"missing API key: send it in the '{API_KEY_HEADER}' metadata entry")


class Authenticator(Generic[P]):
    """Turns the caller's API key into a principal via ``resolve`` (which raises if unknown)."""

    def __init__(self, resolve: Callable[[str], P], *, ttl_s: float = 30.0) -> None:
        self._resolve = resolve
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, P]] = {}
        self._lock = threading.Lock()

    def __call__(self, context: grpc.ServicerContext) -> P:
        key = _api_key(context.invocation_metadata())
        if key is None:
            raise MissingApiKey()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = self._resolve(key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, principal)
        return principal

    def known(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> P | None:
        """The principal of a key resolved recently, or None: never calls ``resolve``.

        For decisions that must not wait on the key store (refusing early under overload);
        an unknown or expired key is left to :meth:`__call__`.
        """
        key = _api_key(metadata or ())
        if key is None:
            return None
        with self._lock:
            hit = self._cache.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def _api_key(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    key = next((value for name, value in metadata if name == API_KEY_HEADER), None)
    return key if key and isinstance(key, str) else None
