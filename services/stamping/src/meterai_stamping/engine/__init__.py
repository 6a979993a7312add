"""PDF stamp engine: the visible e-meterai seal plus a PAdES signature placeholder.

Scope: parse just enough of a PDF (trailer, cross-reference, catalog, the
target page and its ancestors) to append an incremental update holding a new
signature field whose appearance is the seal, and later embed the CMS produced
by the signing service.  No I/O, no network, no keys: bytes in, bytes out.
"""

from .errors import (
    CertifiedDocument,
    CertifiedNoChanges,
    CertifiedNoNewFields,
    DocumentTooLarge,
    EncryptedPdf,
    InvalidPlaceholder,
    InvalidRequest,
    MalformedPdf,
    NotAPdf,
    PageOutOfRange,
    RectOutsidePage,
    RectTooSmall,
    SealOverlaps,
    SignatureTooLarge,
    StampError,
    UnverifiableStamp,
)
from .model import DocumentInfo, Limits, PageSize, PreparedDocument, Rect, Seal
from .self_check import check_stamped
from .signature import embed_signature, placeholder_of
from .specimen import Specimen
from .stamp import inspect, prepare

__all__ = [
    "CertifiedDocument",
    "CertifiedNoChanges",
    "CertifiedNoNewFields",
    "DocumentInfo",
    "DocumentTooLarge",
    "EncryptedPdf",
    "InvalidPlaceholder",
    "InvalidRequest",
    "Limits",
    "MalformedPdf",
    "NotAPdf",
    "PageOutOfRange",
    "PageSize",
    "PreparedDocument",
    "Rect",
    "RectOutsidePage",
    "RectTooSmall",
    "Seal",
    "SealOverlaps",
    "SignatureTooLarge",
    "Specimen",
    "StampError",
    "UnverifiableStamp",
    "check_stamped",
    "embed_signature",
    "inspect",
    "placeholder_of",
    "prepare",
]
