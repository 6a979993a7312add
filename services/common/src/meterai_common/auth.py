"""Caller authentication shared by the reseller-facing servicers.

Resellers send their key in the ``x-api-key`` metadata entry, or connect to a service's
client-certificate port with a certificate the platform issued them (mTLS); the reseller is
always derived from the key or the certificate, never from a request field. Resolved keys are
cached briefly so a surge of calls does not turn into a surge of key lookups; a revoked key
stops working within the cache TTL. Certificates are looked up on every call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import grpc

from meterai_common.tls import RESELLER_URI_PREFIX, peer_certificate_der, peer_identity

__all__ = ["API_KEY_HEADER", "Authenticator", "MissingApiKey"]

API_KEY_HEADER = "x-api-key"

P = TypeVar("P")


class MissingApiKey(Exception):
    code = "UNAUTHENTICATED"

    def __init__(self, misplaced_in: str | None = None) -> None:
        if misplaced_in is not None:
            super().__init__(
                f"an API key was sent in the '{misplaced_in}' metadata entry; send it in "
                f"'{API_KEY_HEADER}' instead"
            )
        else:
            super().__init__(
                f"missing API key: send it in the '{API_KEY_HEADER}' metadata entry, or "
                "connect to the client-certificate port with a certificate the platform issued"
            )


class Authenticator(Generic[P]):
    """Turns the caller's API key into a principal via ``resolve`` (which raises if unknown)."""

    def __init__(
        self,
        resolve: Callable[[str], P],
        *,
        ttl_s: float = 30.0,
        resolve_certificate: Callable[[str, bytes], P] | None = None,
    ) -> None:
        """
        :param resolve_certificate: turns a reseller id (from a verified client certificate)
            and the certificate's DER into a principal, raising if the certificate is not
            registered to that reseller or was revoked; called on every call, never cached.
        """
        self._resolve = resolve
        self._resolve_certificate = resolve_certificate
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, P]] = {}
        self._lock = threading.Lock()

    def __call__(self, context: grpc.ServicerContext) -> P:
        if self._resolve_certificate is not None:
            identity = peer_identity(context)
            if identity is not None and identity.startswith(RESELLER_URI_PREFIX):
                der = peer_certificate_der(context)
                assert der is not None
                return self._resolve_certificate(identity.removeprefix(RESELLER_URI_PREFIX), der)
        metadata = context.invocation_metadata()
        key = _api_key(metadata)
        if key is None:
            raise MissingApiKey(_misplaced_key(metadata))
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


def _misplaced_key(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The header that carries what looks like a meterai key, when it is not ``x-api-key``."""
    for name, value in metadata:
        if name != API_KEY_HEADER and isinstance(value, str) and "mtk_" in value:
            return name
    return None


def _api_key(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    key = next((value for name, value in metadata if name == API_KEY_HEADER), None)
    return key if key and isinstance(key, str) else None
