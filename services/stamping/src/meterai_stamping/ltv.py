"""Long-term validation: the validation data that keeps a seal verifiable (PAdES B-LT, B-LTA).

A B-T seal proves when it was made, but a validator years later also needs the certificate
chains of the signer and of the timestamp authority and proof that none of those certificates
was revoked when the seal was made, from a CA whose servers may be gone by then. After the
signature is embedded, the finishing step fetches that proof (OCSP answers and CRLs, from the
addresses the certificates name) and writes it, with the chains, into the document security
store (DSS, ISO 32000-2 §12.8.4.3) as one more incremental update: B-LT. On request a document
timestamp (RFC 3161 over the whole file, ``/DocTimeStamp``) follows, which lets the validation
data outlive the timestamp authority's certificate too: B-LTA.

The PDF and revocation work is pyHanko's: ``async_add_validation_info`` validates each chain
against the platform's trust roots, collects what it fetched, and writes the DSS with its
``/VRI`` entry; ``PdfTimeStamper`` adds the document timestamp (and the DSS entries its own
chain needs). This module only bounds the time it may take and sorts failures the way the
platform sorts every dependency's: an unreachable, slow or failing responder is an outage
(:class:`RevocationUnavailable`: the job waits and is tried again within its deadline); a
revoked or untrusted certificate is a fact (:class:`LongTermRefused`: the job fails and is
refunded).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from io import BytesIO
from typing import Literal

from asn1crypto import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.validation.dss import async_add_validation_info
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import (
    CertificateFetchError,
    InvalidCertificateError,
    PathBuildingError,
    RevokedError,
)
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

__all__ = [
    "LONG_TERM_LEVELS",
    "LongTermRefused",
    "LongTermSettings",
    "RevocationUnavailable",
    "add_long_term_data",
]

LongTermLevel = Literal["B-LT", "B-LTA"]
LONG_TERM_LEVELS: tuple[LongTermLevel, ...] = ("B-LT", "B-LTA")

_FETCHES = 8
"""Bound on the requests one document needs (OCSP and CRL for three certificates, the
document timestamp and its size probe); with the per-request timeout it bounds the whole."""


class RevocationUnavailable(Exception):
    """The revocation data (or the document timestamp) could not be had in time: an outage,
    which says nothing about the document; the job is tried again within its deadline."""


class LongTermRefused(Exception):
    """A certificate of the chain is revoked or does not chain to the trust roots: no retry
    can make the seal long-term valid."""


@dataclass(frozen=True)
class LongTermSettings:
    """What the finishing step adds, and how long it may wait for it."""

    level: LongTermLevel
    """``B-LT``: the DSS; ``B-LTA``: the DSS, then a document timestamp."""

    trust_roots: tuple[bytes, ...]
    """DER certificates the signer's and the timestamp authority's chains end in."""

    timeout_s: float = 5.0
    """Per-request bound on each OCSP, CRL and timestamp answer; slower counts as down."""

    tsa_url: str | None = None
    """The timestamp authority of the document timestamp (``B-LTA`` only)."""

    tsa_username: str | None = None
    tsa_password: str | None = None
    """HTTP Basic credentials for that authority, if it wants them."""

    def __post_init__(self) -> None:
        if self.level not in LONG_TERM_LEVELS:
            raise ValueError(f"long-term level must be B-LT or B-LTA, not {self.level!r}")
        if self.level == "B-LTA" and not self.tsa_url:
            raise ValueError("B-LTA needs a timestamp authority for its document timestamp")
        if not self.trust_roots:
            raise ValueError("long-term validation needs the trust roots the chains end in")


def add_long_term_data(pdf: bytes, settings: LongTermSettings) -> bytes:
    """``pdf`` (its last signature just embedded) with the DSS, and the document timestamp
    for B-LTA, appended as incremental updates; the bytes before stay as they are.

    Never waits longer than about ``_FETCHES`` times ``settings.timeout_s``.

    :raises RevocationUnavailable: a responder or the authority did not answer usably in time.
    :raises LongTermRefused: a certificate is revoked or untrusted.
    """
    budget = settings.timeout_s * _FETCHES
    try:
        return asyncio.run(asyncio.wait_for(_add(pdf, settings), budget))
    except TimeoutError as error:
        raise RevocationUnavailable(f"revocation data was not had within {budget:.0f} s") from error


async def _add(pdf: bytes, settings: LongTermSettings) -> bytes:
    backend = AIOHttpFetcherBackend(per_request_timeout=settings.timeout_s)
    roots = [x509.Certificate.load(root) for root in settings.trust_roots]

    def context() -> ValidationContext:
        # A fresh context per step: one that cached answers would not fetch again, and the
        # document timestamp's chain needs answers made after that timestamp.
        return ValidationContext(
            trust_roots=roots,
            allow_fetching=True,
            revocation_mode="require",
            fetcher_backend=backend,
        )

    try:
        reader = PdfFileReader(BytesIO(pdf))
        signature = reader.embedded_regular_signatures[-1]
        with_dss: BytesIO = await async_add_validation_info(signature, context(), output=BytesIO())
        if settings.level == "B-LT":
            return with_dss.getvalue()
        assert settings.tsa_url is not None
        auth = None
        if settings.tsa_username is not None:
            auth = (settings.tsa_username, settings.tsa_password or "")
        stamper = PdfTimeStamper(
            HTTPTimeStamper(settings.tsa_url, timeout=settings.timeout_s, auth=auth),
            field_name="e-meterai-archive-timestamp",
        )
        with_timestamp: BytesIO = await stamper.async_timestamp_pdf(
            IncrementalPdfFileWriter(with_dss), "sha256"
        )
        stamped = PdfFileReader(with_timestamp)
        archive = stamped.embedded_timestamp_signatures[-1]
        sealed: BytesIO = await async_add_validation_info(archive, context(), output=BytesIO())
        return sealed.getvalue()
    except CertificateFetchError as error:
        raise RevocationUnavailable(
            f"a certificate of the chain is unavailable: {error}"
        ) from error
    except (RevokedError, PathBuildingError, InvalidCertificateError) as error:
        raise LongTermRefused(f"the seal cannot be made long-term valid: {error}") from error
    except (LongTermRefused, asyncio.CancelledError):
        raise
    except Exception as error:  # responder down, slow, garbled: an outage to wait out
        raise RevocationUnavailable(
            f"revocation data or the document timestamp is unavailable: {error!r}"
        ) from error
    finally:
        await backend.close()
