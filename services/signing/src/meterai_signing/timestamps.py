"""RFC 3161 signature timestamps (PAdES B-T), as a seam shaped like pyHanko's ``TimeStamper``.

:class:`TimestampSource` is what the CMS builder needs: a token for a message imprint, and a
bound on the token's size, because the PDF placeholder is reserved before the token exists.
:class:`HttpTimeStamper` is the RFC 3161 HTTP transport to the authority named by
configuration.

The size bound is measured, not guessed: the first call asks the authority for a token, and the
bound is that token's size plus a margin (:data:`SIZE_MARGIN_FRACTION`, at least
:data:`SIZE_MARGIN_MIN` bytes) covering what varies between tokens of one authority: the serial
number, the fraction of ``genTime``, an ECDSA signature's length. An operator may also set the
bound outright (``METERAI_TSA_TOKEN_BOUND``). A token that still comes back larger is refused
(:class:`~meterai_signing.errors.TimestampError`) rather than embedded in too small a hole.

Every answer is checked before it is used: granted status, a ``SignedData`` over a ``TSTInfo``,
our SHA-256 imprint and our nonce. What cannot be checked as a whole (the authority's signature,
its certificate) is what validators check; a token that would fail them is not ours to repair.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from asn1crypto import algos, cms, tsp

from meterai_signing.errors import TimestampError, TimestampUnavailable

__all__ = [
    "SIZE_MARGIN_FRACTION",
    "SIZE_MARGIN_MIN",
    "HttpTimeStamper",
    "TimestampSource",
    "TsaSettings",
    "check_response",
    "timestamp_request",
]

log = logging.getLogger(__name__)

SIZE_MARGIN_FRACTION = 0.25
"""Share of the measured token size added to the bound."""
SIZE_MARGIN_MIN = 512
"""Least number of bytes added to the measured token size."""

_QUERY = "application/timestamp-query"
_REPLY = "application/timestamp-reply"
_PROBE_IMPRINT = hashlib.sha256(b"meterai timestamp size probe").digest()


@runtime_checkable
class TimestampSource(Protocol):
    """Returns RFC 3161 timestamp tokens for SHA-256 imprints."""

    def timestamp(self, imprint: bytes) -> bytes:
        """DER ``ContentInfo`` of a token over ``imprint`` (SHA-256 of the signature value).

        :raises TimestampError: if the answer is unusable (final for this request).
        :raises TimestampUnavailable: if the authority is away for now.
        """
        ...

    @property
    def token_size_bound(self) -> int:
        """Bytes no token of this authority exceeds; may ask the authority once.

        :raises TimestampUnavailable: if it must measure and the authority is away.
        """
        ...


@dataclass(frozen=True)
class TsaSettings:
    """Where the timestamp authority is and how to talk to it."""

    url: str
    """RFC 3161 HTTP(S) endpoint."""
    timeout_s: float = 5.0
    """Per-request bound on connecting and on each read; a slower authority counts as away."""
    username: str | None = None
    """HTTP Basic credentials, when the authority requires them."""
    password: str | None = field(default=None, repr=False)
    token_bound: int | None = None
    """Fixed token size bound; ``None`` measures it (see the module docstring)."""


def timestamp_request(imprint: bytes, nonce: int) -> bytes:
    """DER ``TimeStampReq`` for a SHA-256 ``imprint``, asking for the TSA certificate.

    ``certReq`` makes the authority embed its certificate so the token validates offline.
    """
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": tsp.MessageImprint(
                {
                    "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                    "hashed_message": imprint,
                }
            ),
            "nonce": nonce,
            "cert_req": True,
        }
    )
    der: bytes = request.dump()
    return der


def check_response(body: bytes, imprint: bytes, nonce: int) -> bytes:
    """The token of a ``TimeStampResp`` if it answers this request, as DER ``ContentInfo``.

    :raises TimestampError: the body is not a granted response for ``imprint`` and ``nonce``.
    :raises TimestampUnavailable: the authority asked to be asked again later (``waiting``).
    """
    try:
        response = tsp.TimeStampResp.load(body)
        status = response["status"]["status"].native
        if status == "waiting":
            raise TimestampUnavailable("the timestamp authority is busy (status 'waiting')")
        if status not in ("granted", "granted_with_mods"):
            text = response["status"]["status_string"].native
            raise TimestampError(f"the timestamp authority refused: {status} {text or ''}")
        token = response["time_stamp_token"]
        if token["content_type"].native != "signed_data":
            raise TimestampError("the timestamp token is not a SignedData")
        content = token["content"]["encap_content_info"]
        if content["content_type"].native != "tst_info":
            raise TimestampError("the timestamp token does not hold a TSTInfo")
        info = content["content"].parsed
        if not isinstance(info, tsp.TSTInfo):
            raise TimestampError("the timestamp token's TSTInfo cannot be read")
        stamped = info["message_imprint"]
        if (
            stamped["hash_algorithm"]["algorithm"].native != "sha256"
            or stamped["hashed_message"].native != imprint
        ):
            raise TimestampError("the timestamp token is for another message imprint")
        if info["nonce"].native != nonce:
            raise TimestampError("the timestamp token answers another request (nonce)")
        der: bytes = token.dump(force=False)
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"the timestamp authority answered garbage: {exc}") from exc
    # A last parse of the whole token so nothing lazily skipped above hides a broken tail.
    try:
        cms.ContentInfo.load(der).native  # noqa: B018
    except (ValueError, TypeError) as exc:
        raise TimestampError(f"the timestamp token is malformed: {exc}") from exc
    return der


class HttpTimeStamper:
    """A :class:`TimestampSource` talking RFC 3161 over HTTP to one authority."""

    def __init__(self, settings: TsaSettings) -> None:
        self._settings = settings
        self._bound = settings.token_bound
        self._lock = threading.Lock()
        headers = {"Content-Type": _QUERY, "Accept": _REPLY}
        if settings.username is not None:
            pair = f"{settings.username}:{settings.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self._headers = headers

    def __repr__(self) -> str:
        return f"HttpTimeStamper({self._settings.url!r})"

    @property
    def url(self) -> str:
        return self._settings.url

    @property
    def token_size_bound(self) -> int:
        with self._lock:
            if self._bound is None:
                measured = len(self._fetch(_PROBE_IMPRINT))
                margin = max(SIZE_MARGIN_MIN, int(measured * SIZE_MARGIN_FRACTION))
                self._bound = measured + margin
                log.info(
                    "timestamp tokens of %s measured at %d bytes; reserving %d",
                    self._settings.url,
                    measured,
                    self._bound,
                )
            return self._bound

    def timestamp(self, imprint: bytes) -> bytes:
        token = self._fetch(imprint)
        bound = self.token_size_bound
        if len(token) > bound:
            raise TimestampError(
                f"the timestamp token is {len(token)} bytes, more than the {bound} reserved; "
                "raise METERAI_TSA_TOKEN_BOUND (or unset it to measure again)"
            )
        return token

    def _fetch(self, imprint: bytes) -> bytes:
        nonce = secrets.randbits(63) | (1 << 62)  # fixed width: the token size stays steady
        request = urllib.request.Request(
            self._settings.url,
            data=timestamp_request(imprint, nonce),
            headers=self._headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._settings.timeout_s) as reply:
                body = reply.read(1024 * 1024)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise TimestampUnavailable(
                    f"the timestamp authority answered HTTP {exc.code}"
                ) from exc
            raise TimestampError(
                f"the timestamp authority refused the request: HTTP {exc.code}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise TimestampUnavailable(
                f"the timestamp authority at {self._settings.url} is unreachable: {exc}"
            ) from exc
        except OSError as exc:
            raise TimestampUnavailable(f"the timestamp authority failed: {exc}") from exc
        return check_response(body, imprint, nonce)
