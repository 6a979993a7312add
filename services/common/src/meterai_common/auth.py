"""API-key authentication shared by the reseller-facing servicers.

Resellers send their key in the ``x-api-key`` metadata entry or as ``authorization: Bearer
KEY`` (what most HTTP-minded gRPC clients, grpcurl and Postman send), or connect to a service's
client-certificate port with a certificate the platform issued them (mTLS). The reseller is
always derived from the key or the certificate, never from a request field. Every call resolves
its key or certificate afresh (one primary-key read), so a credential revoked in any process is
refused by every process on its very next call: no decision to admit a call is ever taken from
memory.

What is kept in memory is only the principal of keys seen recently, for :meth:`Authenticator.known`:
the overload shedding in front of the stamping service uses it to refuse a busy reseller before
its upload arrives. That memory may be stale; it is only ever used to refuse, never to admit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import grpc

from meterai_common.tls import RESELLER_URI_PREFIX, peer_certificate_der, peer_identity

__all__ = ["API_KEY_HEADER", "AUTHORIZATION_HEADER", "Authenticator", "MissingApiKey"]

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"
_BEARER = "bearer "

P = TypeVar("P")


class MissingApiKey(Exception):
    code = "UNAUTHENTICATED"
    reason = "MISSING_API_KEY"

    def __init__(self, misplaced_in: str | None = None) -> None:
        if misplaced_in is not None:
            super().__init__(
                f"an API key was sent in the '{misplaced_in}' metadata entry; send it in "
                f"'{API_KEY_HEADER}' instead"
            )
        else:
            super().__init__(
                f"missing API key: send it in the '{API_KEY_HEADER}' metadata entry (or as "
                "'authorization: Bearer KEY'), or connect to the client-certificate port with "
                "a certificate the platform issued"
            )


class Authenticator(Generic[P]):
    """Turns the caller's API key into a principal via ``resolve`` (which raises if the key is
    unknown, revoked or expired), on every call.

    :param remember_s: how long :meth:`known` remembers a key's principal after it was last
        resolved.
    """

    _MAX_REMEMBERED = 10_000

    def __init__(
        self,
        resolve: Callable[[str], P],
        *,
        remember_s: float = 30.0,
        resolve_certificate: Callable[[str, bytes], P] | None = None,
    ) -> None:
        """
        :param resolve_certificate: turns a reseller id (from a verified client certificate)
            and the certificate's DER into a principal, raising if the certificate is not
            registered to that reseller or was revoked; called on every call, like keys.
        """
        self._resolve = resolve
        self._resolve_certificate = resolve_certificate
        self._remember_s = remember_s
        self._seen: dict[str, tuple[float, P]] = {}
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
        try:
            principal = self._resolve(key)
        except Exception:
            with self._lock:
                self._seen.pop(key, None)
            raise
        until = time.monotonic() + self._remember_s
        with self._lock:
            if len(self._seen) >= self._MAX_REMEMBERED and key not in self._seen:
                self._seen.clear()
            self._seen[key] = (until, principal)
        return principal

    def known(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> P | None:
        """The principal of a key resolved recently, or None: never calls ``resolve``.

        Only for decisions that refuse (shedding load before the upload arrives): the answer
        may be stale, a key revoked since is still reported here until the next call resolves
        it, and that call is refused by :meth:`__call__`.
        """
        key = _api_key(metadata or ())
        if key is None:
            return None
        with self._lock:
            hit = self._seen.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def _misplaced_key(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The header that carries what looks like a meterai key, when it is not ``x-api-key``."""
    for name, value in metadata:
        meterai_key = isinstance(value, str) and "mtk_" in value
        if meterai_key and name not in (API_KEY_HEADER, AUTHORIZATION_HEADER):
            return name
    return None


def _api_key(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The key from ``x-api-key``, else from ``authorization: Bearer KEY``."""
    bearer = None
    for name, value in metadata:
        if not isinstance(value, str) or not value:
            continue
        if name == API_KEY_HEADER:
            return value
        if name == AUTHORIZATION_HEADER and value[: len(_BEARER)].lower() == _BEARER:
            bearer = value[len(_BEARER) :].strip() or None
    return bearer
