"""The one error tree the stamp engine raises.

Every failure of :func:`~meterai_stamping.engine.prepare`,
:func:`~meterai_stamping.engine.inspect` and
:func:`~meterai_stamping.engine.embed_signature` is a :class:`StampError`, so the
gRPC layer can map each class to a status code through :attr:`StampError.code`
without knowing anything about PDF parsing.  Messages are written for the person
who submitted the document: they say what is wrong and what to do about it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "CertifiedDocument",
    "CertifiedNoChanges",
    "CertifiedNoNewFields",
    "DocumentTooLarge",
    "EncryptedPdf",
    "ErrorCode",
    "InvalidPlaceholder",
    "InvalidRequest",
    "MalformedPdf",
    "NotAPdf",
    "PageOutOfRange",
    "RectOutsidePage",
    "RectTooSmall",
    "SealOverlaps",
    "SignatureTooLarge",
    "StampError",
    "UnverifiableStamp",
]

ErrorCode = Literal["INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "INTERNAL"]


class StampError(Exception):
    """Root of every error the engine raises on purpose."""

    code: ClassVar[ErrorCode] = "INVALID_ARGUMENT"
    """gRPC status name the API layer should answer with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAPdf(StampError):
    """The bytes are not a PDF file at all (no ``%PDF-`` header)."""


class MalformedPdf(StampError):
    """The file claims to be a PDF but is broken beyond what the engine repairs."""


class EncryptedPdf(StampError):
    """The document is encrypted and the password is missing, wrong or unusable.

    With the right password (or none, for documents whose user password is
    empty) encrypted documents are stamped and keep their encryption; the
    message says which password is needed and how to send it.
    """

    code: ClassVar[ErrorCode] = "FAILED_PRECONDITION"


class PageOutOfRange(StampError):
    """The requested page number does not exist in the document."""


class RectOutsidePage(StampError):
    """The seal rectangle is not entirely inside the displayed page."""


class RectTooSmall(StampError):
    """The seal rectangle (or the whole page) is too small for a scannable seal."""


class DocumentTooLarge(StampError):
    """The document exceeds :class:`~meterai_stamping.engine.Limits`."""

    code: ClassVar[ErrorCode] = "RESOURCE_EXHAUSTED"


class CertifiedDocument(StampError):
    """The document is certified by its author (DocMDP), so a new seal would break that.

    Certification fixes which later changes keep the author's signature
    valid, and none of its levels allows adding a signature field; the
    subclasses say which level the document has.
    """

    code: ClassVar[ErrorCode] = "FAILED_PRECONDITION"


class CertifiedNoChanges(CertifiedDocument):
    """The document is certified with DocMDP ``/P 1``: no change at all, not even a signature."""


class CertifiedNoNewFields(CertifiedDocument):
    """The document is certified with DocMDP ``/P 2`` or ``/P 3``.

    The author allows filling in (and signing) the fields already there, plus
    comments at ``/P 3``, but not new fields such as the seal's signature field.
    """


class SignatureTooLarge(StampError):
    """The CMS does not fit the ``/Contents`` placeholder reserved by ``prepare``."""

    code: ClassVar[ErrorCode] = "FAILED_PRECONDITION"


class InvalidRequest(StampError):
    """A request argument that is not about the document is unusable (bad rectangle, sizes, URL)."""


class InvalidPlaceholder(StampError):
    """``embed_signature`` was given offsets that do not delimit a ``/Contents`` placeholder."""


class UnverifiableStamp(StampError):
    """A finished output failed :func:`~meterai_stamping.engine.check_stamped`.

    The engine wrote something the platform could not verify or stamp again:
    the platform's fault, never the user's, so the job fails and is refunded.
    """

    code: ClassVar[ErrorCode] = "INTERNAL"


class SealOverlaps(StampError):
    """The seal rectangle overlaps an e-meterai already on that page.

    The message names the seal in the way and the nearest free rectangle of
    the same size, if the page has one.
    """

    code: ClassVar[ErrorCode] = "FAILED_PRECONDITION"
