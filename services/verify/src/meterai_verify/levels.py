"""Which PAdES baseline level (ETSI EN 319 142-1) a validated signature reaches.

The judgement of each ingredient is pyHanko's (:class:`PdfSignatureStatus`); this module only
names the level the ingredients add up to:

* ``B-B``: the signature is intact, valid and its signer trusted;
* ``B-T``: and it carries a signature timestamp (RFC 3161, in the CMS unsigned attributes)
  that is itself intact, valid and from a trusted timestamp authority: the signature provably
  existed at that time.

* ``B-LT``: and the document security store (DSS) holds what validating the signer's and the
  timestamp authority's chains needs, revocation data included: both chains validate from
  the document alone (no fetching, revocation required), the signer's at the time the
  timestamp proves, with revocation data issued after that time;
* ``B-LTA``: and a document timestamp after the signature, itself validated from the DSS,
  covers the lot, so the validation data stays provable after the authority's certificate
  expires.

:func:`long_term_level` does the last two checks; :func:`pades_level` the first two.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asn1crypto import x509
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import (
    EmbeddedPdfSignature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (
    REQUIRE_REVINFO,
    CertRevTrustPolicy,
    FreshnessReqType,
)

__all__ = ["long_term_level", "offline_context", "pades_level", "proven_time"]

_AFTER_USE = CertRevTrustPolicy(
    REQUIRE_REVINFO,
    freshness=timedelta(0),
    freshness_req_type=FreshnessReqType.TIME_AFTER_SIGNATURE,
)
"""Revocation data counts when issued after the key was used: it then says the certificate
was not revoked when it signed, however long ago that was."""


def _timestamp_holds(status: PdfSignatureStatus) -> bool:
    stamp = status.timestamp_validity
    return stamp is not None and stamp.intact and stamp.valid and stamp.trusted


def pades_level(status: PdfSignatureStatus) -> str:
    """``B-T``, ``B-B``, or ``""`` when the signature itself does not hold."""
    if not (status.intact and status.valid and status.trusted):
        return ""
    return "B-T" if _timestamp_holds(status) else "B-B"


def proven_time(status: PdfSignatureStatus) -> datetime | None:
    """The time a valid, trusted signature timestamp proves, else ``None``."""
    if not _timestamp_holds(status):
        return None
    assert status.timestamp_validity is not None
    when: datetime = status.timestamp_validity.timestamp
    return when


def offline_context(
    dss: DocumentSecurityStore,
    trust_roots: list[x509.Certificate],
    moment: datetime,
    used_at: datetime,
) -> ValidationContext:
    """A validation context that knows only the DSS: nothing is fetched, revocation data is
    required for every certificate and must be issued after ``used_at``."""
    return dss.as_validation_context(
        {
            "trust_roots": trust_roots,
            "allow_fetching": False,
            "revinfo_policy": _AFTER_USE,
            "moment": moment,
            "best_signature_time": used_at,
        }
    )


async def long_term_level(
    embedded: EmbeddedPdfSignature,
    status: PdfSignatureStatus,
    trust_roots: list[x509.Certificate],
    at: datetime | None = None,
) -> str:
    """The level ``status`` reaches once the document's DSS and document timestamps are
    taken into account, judged at ``at`` (now by default) from the file alone."""
    level = pades_level(status)
    when = proven_time(status)
    if level != "B-T" or when is None:
        return level
    reader = embedded.reader
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return level
    at = at or datetime.now(UTC)
    tsa_checked_at = at
    archive = [
        stamp
        for stamp in reader.embedded_timestamp_signatures
        if stamp.signed_revision > embedded.signed_revision
    ]
    lta = False
    if archive:
        first = archive[0]
        stamped_at = first.self_reported_timestamp or at
        archived = await async_validate_pdf_timestamp(
            first, validation_context=offline_context(dss, trust_roots, at, stamped_at)
        )
        if archived.intact and archived.valid and archived.trusted:
            lta, tsa_checked_at = True, archived.timestamp
    try:
        offline = await async_validate_pdf_signature(
            embedded,
            signer_validation_context=offline_context(dss, trust_roots, when, when),
            ts_validation_context=offline_context(dss, trust_roots, tsa_checked_at, when),
        )
    except Exception:  # the validation data does not hold together: not long-term
        return level
    if not (offline.intact and offline.valid and offline.trusted and _timestamp_holds(offline)):
        return level
    return "B-LTA" if lta else "B-LT"
