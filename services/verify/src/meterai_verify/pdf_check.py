"""Verification of uploaded PDFs: which signatures they carry and whether each one holds.

The cryptographic and structural judgement is pyHanko's, not ours: a
verification service that trusted code written alongside the signer would
share its bugs. This module only runs pyHanko's validator offline against the
trust roots it is given and condenses each result into a :class:`SignatureCheck`
that the service layer can store or send, plus the e-meterai serial found in
the signature's ``/Reason`` or field name so the serial can be checked against
the ledger.

No network: revocation data is never fetched (``allow_fetching=False``), so the
result depends only on the file, the roots and the clock.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO

from asn1crypto import x509
from pyhanko.pdf_utils.crypt.api import AuthStatus
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from meterai_verify.changes import Change, changes_after
from meterai_verify.levels import long_term_level, proven_time

__all__ = [
    "SERIAL_LENGTH",
    "Coverage",
    "PasswordRequired",
    "PdfCheck",
    "PdfCheckError",
    "SignatureCheck",
    "async_check_pdf",
    "check_pdf",
    "extract_serial",
]

SERIAL_LENGTH = 22
"""An e-meterai serial is 22 characters, upper-case letters and digits."""


class PdfCheckError(Exception):
    """The upload cannot be checked at all: not a PDF, unreadable, or bad trust roots."""


class PasswordRequired(PdfCheckError):
    """The document is encrypted and neither the empty password nor the one given opens it.

    Front ends answer FAILED_PRECONDITION / 4xx: the checker can supply the password."""


def _decrypt(reader: PdfFileReader, password: str | None) -> None:
    # Many "protected" PDFs have an empty user password; signatures can only be
    # checked once the string values are decrypted. A supplied password is tried
    # first (user or owner password both derive the file key).
    for candidate in dict.fromkeys([password or "", ""]):
        if reader.decrypt(candidate.encode("utf-8")).status is not AuthStatus.FAILED:
            return
    if password:
        raise PasswordRequired(
            "the document is encrypted and the password given does not open it: "
            "supply the document's password"
        )
    raise PasswordRequired(
        "the document is encrypted with a password: supply the document's password to verify it"
    )


class Coverage(enum.Enum):
    """How much of the file a signature's ``/ByteRange`` covers."""

    WHOLE_FILE = "whole_file"
    """Every byte except the signature value itself: nothing was added after signing."""

    WHOLE_REVISION = "whole_revision"
    """The signature's own revision; later incremental updates exist (see modification level)."""

    PARTIAL = "partial"
    """Anything less: parts of the signed revision are unsigned, so the signature proves little."""


_COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: Coverage.WHOLE_FILE,
    SignatureCoverageLevel.ENTIRE_REVISION: Coverage.WHOLE_REVISION,
}


@dataclass(frozen=True)
class SignatureCheck:
    """The verdict on one signature field of the document."""

    field_name: str
    """Fully qualified name of the signature form field."""

    reason: str | None
    """The signature dictionary's ``/Reason``, as written by the signer."""

    serial: str | None
    """e-meterai serial found by :func:`extract_serial` in the reason or field name."""

    signer: str | None
    """Signer certificate subject, human-readable."""

    intact: bool
    """The signed byte ranges still hash to the digest in the signature."""

    valid: bool
    """The signature value verifies with the signer certificate's key."""

    trusted: bool
    """The signer certificate chains to one of the given trust roots (and is intact and valid)."""

    coverage: Coverage
    """How much of the file the signature covers."""

    modification_level: str | None
    """pyHanko's classification of changes made after signing (``NONE``, ``LTA_UPDATES``,
    ``FORM_FILLING``, ``ANNOTATIONS``, ``OTHER``), or ``None`` if it could not be determined."""

    modifications_acceptable: bool
    """Later changes, if any, are allowed by the document's modification policy."""

    message_digest: str | None
    """Hex of the CMS ``message-digest`` attribute: the document digest the signer signed."""

    signing_time: datetime | None
    """Time claimed by the signer (``/M`` for PAdES); not proven by itself."""

    error: str | None = None
    """Why the signature could not be evaluated at all, if so; every verdict is then False."""

    level: str = ""
    """PAdES baseline level reached (:func:`~meterai_verify.levels.long_term_level`): ``B-B``,
    ``B-T``, ``B-LT``, ``B-LTA``; empty when the signature does not hold at all."""

    timestamp_time: datetime | None = None
    """Time proven by a valid, trusted signature timestamp (B-T), if there is one."""

    changes: tuple[Change, ...] = ()
    """What later revisions changed (:func:`~meterai_verify.changes.changes_after`); empty
    when nothing was added after this signature, or when it could not be evaluated."""

    signed_revision_end: int = 0
    """Offset just past the signature's ``/ByteRange``: ``pdf[:signed_revision_end]`` is
    exactly the revision the signer signed. 0 when the byte range cannot be read."""

    @property
    def coverage_ok(self) -> bool:
        """The signature covers its whole revision and anything added later is permitted.

        An e-meterai stays valid when later revisions only add what the policy
        allows (further signatures, form filling); a partial byte range never does.
        """
        return self.coverage is not Coverage.PARTIAL and self.modifications_acceptable

    @property
    def ok(self) -> bool:
        """The signature holds: intact, valid, trusted, and no change beyond policy since."""
        return self.intact and self.valid and self.trusted and self.coverage_ok


@dataclass(frozen=True)
class PdfCheck:
    """Every signature found in an uploaded PDF, in document order."""

    signatures: tuple[SignatureCheck, ...]
    """One entry per signature field holding a signature (document timestamps excluded)."""

    @property
    def signed(self) -> bool:
        """The document carries at least one signature."""
        return bool(self.signatures)

    @property
    def serials(self) -> tuple[str, ...]:
        """e-meterai serials found, in document order, without duplicates."""
        return tuple(dict.fromkeys(s.serial for s in self.signatures if s.serial))


_MARKED_SERIAL = re.compile(
    r"(?i:e[\s._-]*meterai)"  # the marker, any case: e-meterai, e-Meterai, E_METERAI, emeterai
    r"[^A-Za-z0-9]*"  # separators: space, colon, dash, '#', brackets...
    r"(?:(?i:serial|seri|nomor|number|no|nr|sn|id)\.?[^A-Za-z0-9]+)*"  # optional label words
    rf"(?<![A-Za-z0-9])([A-Z0-9]{{{SERIAL_LENGTH}}})(?![A-Za-z0-9])"
)
_BARE_SERIAL = re.compile(rf"(?<![A-Za-z0-9])[A-Z0-9]{{{SERIAL_LENGTH}}}(?![A-Za-z0-9])")


def _bare_serial(text: str) -> str | None:
    candidates = {
        token
        for token in _BARE_SERIAL.findall(text)
        if any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    }
    return candidates.pop() if len(candidates) == 1 else None


def extract_serial(*texts: str | None) -> str | None:
    """Find the e-meterai serial in the given texts (``/Reason`` first, then the field name).

    Signers word the reason differently ("e-Meterai ABC…", "Dibubuhi e-meterai
    no. seri: ABC…", field ``e-meterai-ABC…``), so the search is tolerant:

    1. In each text in turn, the first 22-character upper-case/digit token
       that follows an ``e-meterai`` marker. The marker matches in any case
       and with any or no separator (``e-Meterai``, ``E_METERAI``,
       ``emeterai``); between marker and serial may come punctuation and
       label words (``serial``, ``seri``, ``no.``, ``nomor``, ``SN``, ``id``).
    2. Failing that, in each text in turn, a standalone 22-character token of
       upper-case letters *and* digits, if it is the only such token in that
       text — a field named just by its serial still counts, while a text
       with two candidates is ambiguous and yields nothing.

    The serial itself must be upper-case: a lower-case run is not a serial.

    :param texts: Candidate texts in order of preference; ``None`` entries are skipped.
    :return: The serial, or ``None`` if none is found.
    """
    present = [t for t in texts if t]
    for text in present:
        match = _MARKED_SERIAL.search(text)
        if match:
            return match.group(1)
    for text in present:
        serial = _bare_serial(text)
        if serial:
            return serial
    return None


def _trust_roots(trust_roots: Iterable[bytes]) -> list[x509.Certificate]:
    roots = []
    for index, der in enumerate(trust_roots):
        try:
            root = x509.Certificate.load(bytes(der))
            root.native  # noqa: B018 - forces the lazy parse so bad input fails here
        except (ValueError, TypeError) as exc:
            raise PdfCheckError(f"trust root #{index} is not a DER certificate: {exc}") from exc
        roots.append(root)
    return roots


def _reader(pdf: bytes, password: str | None = None) -> PdfFileReader:
    """Open *pdf* with pyHanko's strict reader, then admit hybrid-reference files.

    pyHanko's strict settings refuse to validate any signature in a
    hybrid-reference file (a classic table plus ``/XRefStm``), which is the
    form the platform's own stamps take after a hybrid original. The file is
    still *read* strictly first: every cross-reference section, the stream
    behind each ``/XRefStm``, freed and clobbered entries and the catalog must
    pass pyHanko's strict checks, and anything that fails them is refused as
    before. Only then, and only for a hybrid file, is the reader switched to
    pyHanko's non-strict mode, which is what lets its validator and its
    change analysis (``XrefStreamRule``) accept the hybrid sections; the
    change analysis itself (what each later revision touched) is unchanged.
    """
    # The header may sit anywhere in the first 1024 bytes (ISO 32000-1, annex H).
    if b"%PDF-" not in pdf[:1024]:
        raise PdfCheckError("not a PDF: no %PDF- header in the first 1024 bytes")
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=True)
        if reader.encrypted:
            _decrypt(reader, password)
        # Reading the fields walks the catalog and AcroForm: a broken
        # cross-reference table shows up here rather than half-way through.
        list(reader.embedded_regular_signatures)
        if reader.xrefs.hybrid_xrefs_present:
            reader.strict = False
    except PdfCheckError:
        raise
    except Exception as exc:  # untrusted input: any parser failure means unreadable
        raise PdfCheckError(f"unreadable PDF: {exc}") from exc
    return reader


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _message_digest(embedded: EmbeddedPdfSignature) -> str | None:
    signed_attrs = embedded.signer_info["signed_attrs"]
    for attribute in signed_attrs:
        if attribute["type"].native == "message_digest":
            digest: bytes = attribute["values"][0].native
            return digest.hex()
    return None


def _coverage(level: SignatureCoverageLevel | None) -> Coverage:
    return Coverage.PARTIAL if level is None else _COVERAGE.get(level, Coverage.PARTIAL)


def _modification_level(status: PdfSignatureStatus) -> str | None:
    level: ModificationLevel | None = status.modification_level
    return None if level is None else level.name


def _signer(embedded: EmbeddedPdfSignature) -> str | None:
    try:
        name: str = embedded.signer_cert.subject.human_friendly
    except Exception:  # a missing or malformed certificate only loses the name
        return None
    return name


def _revision_end(embedded: EmbeddedPdfSignature) -> int:
    try:
        byte_range = [int(v) for v in embedded.byte_range]
    except Exception:  # a malformed /ByteRange only loses the download of the revision
        return 0
    if len(byte_range) != 4:
        return 0
    return byte_range[2] + byte_range[3]


def _unevaluable(embedded: EmbeddedPdfSignature, reason: str | None, error: str) -> SignatureCheck:
    field_name = _text(embedded.field_name) or ""
    try:
        digest = _message_digest(embedded)
    except Exception:  # the CMS may be what is broken
        digest = None
    return SignatureCheck(
        field_name=field_name,
        reason=reason,
        serial=extract_serial(reason, field_name),
        signer=_signer(embedded),
        intact=False,
        valid=False,
        trusted=False,
        coverage=Coverage.PARTIAL,
        modification_level=None,
        modifications_acceptable=False,
        message_digest=digest,
        signing_time=None,
        error=error,
        signed_revision_end=_revision_end(embedded),
    )


async def _check_signature(
    embedded: EmbeddedPdfSignature,
    trust_roots: list[x509.Certificate],
    everyone: list[EmbeddedPdfSignature],
) -> SignatureCheck:
    reason = _text(embedded.sig_object.get("/Reason"))
    field_name = _text(embedded.field_name) or ""
    # A fresh context per signature: certvalidator caches paths and results,
    # and one signature's embedded certificates must not help another's chain.
    context = ValidationContext(
        trust_roots=trust_roots, allow_fetching=False, revocation_mode="soft-fail"
    )
    timestamp_context = ValidationContext(
        trust_roots=trust_roots, allow_fetching=False, revocation_mode="soft-fail"
    )
    try:
        status = await async_validate_pdf_signature(
            embedded, signer_validation_context=context, ts_validation_context=timestamp_context
        )
    except (SignatureValidationError, PdfError) as exc:
        return _unevaluable(embedded, reason, f"signature cannot be validated: {exc}")
    except Exception as exc:  # untrusted CMS: any decoder failure is a bad signature
        return _unevaluable(embedded, reason, f"malformed signature: {exc}")
    coverage = _coverage(status.coverage)
    try:
        changes = changes_after(
            embedded, status.modification_level, coverage is Coverage.WHOLE_FILE, everyone
        )
    except Exception:  # untrusted structure: what cannot be named counts as a content change
        changes = (Change.CONTENT,)
    return SignatureCheck(
        field_name=field_name,
        reason=reason,
        serial=extract_serial(reason, field_name),
        signer=_signer(embedded),
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        coverage=coverage,
        modification_level=_modification_level(status),
        modifications_acceptable=bool(status.docmdp_ok),
        message_digest=_message_digest(embedded),
        signing_time=status.signer_reported_dt,
        level=await long_term_level(embedded, status, trust_roots),
        timestamp_time=proven_time(status),
        changes=changes,
        signed_revision_end=_revision_end(embedded),
    )


async def async_check_pdf(
    pdf: bytes, trust_roots: list[bytes], password: str | None = None
) -> PdfCheck:
    """Check every signature in ``pdf``; the coroutine form of :func:`check_pdf`.

    :param pdf: The uploaded file.
    :param trust_roots: DER certificates; a signer chaining to any of them is trusted.
    :param password: The document's user or owner password, for an encrypted file
        that the empty password does not open.
    :raises PasswordRequired: If the file is encrypted and no password tried opens it.
    :raises PdfCheckError: If the file is not a readable PDF or a trust root is not a certificate.
    """
    roots = _trust_roots(trust_roots)
    reader = _reader(bytes(pdf), password)
    everyone = list(reader.embedded_regular_signatures)
    checks = [await _check_signature(embedded, roots, everyone) for embedded in everyone]
    return PdfCheck(signatures=tuple(checks))


def check_pdf(pdf: bytes, trust_roots: list[bytes], password: str | None = None) -> PdfCheck:
    """Check every signature in ``pdf`` against ``trust_roots``, offline.

    A signature that cannot be evaluated (garbled CMS, unsupported SubFilter)
    does not fail the whole check: it is reported with ``error`` set and every
    verdict False, so the other signatures are still reported.

    Runs its own event loop; from async code, await :func:`async_check_pdf`.

    :param pdf: The uploaded file.
    :param trust_roots: DER certificates; a signer chaining to any of them is trusted.
    :param password: The document's password, when the empty one does not open it.
    :return: One :class:`SignatureCheck` per signature, in document order.
    :raises PasswordRequired: If the file is encrypted and no password tried opens it.
    :raises PdfCheckError: If the file is not a readable PDF or a trust root is not a certificate.
    """
    return asyncio.run(async_check_pdf(pdf, trust_roots, password))
