"""Which PAdES baseline level (ETSI EN 319 142-1) a validated signature reaches.

The judgement of each ingredient is pyHanko's (:class:`PdfSignatureStatus`); this module only
names the level the ingredients add up to:

* ``B-B``: the signature is intact, valid and its signer trusted;
* ``B-T``: and it carries a signature timestamp (RFC 3161, in the CMS unsigned attributes)
  that is itself intact, valid and from a trusted timestamp authority: the signature provably
  existed at that time.

B-LT and B-LTA (validation data in the document's DSS, document timestamps) are not produced
by the platform yet and are not reported; a document carrying them is reported as B-T.
"""

from __future__ import annotations

from datetime import datetime

from pyhanko.sign.validation.status import PdfSignatureStatus

__all__ = ["pades_level", "proven_time"]


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
