"""The platform's verdict on a serial and on a stamped document: one module, every front end.

Both the gRPC ``VerificationService`` and the public web site call this module and only
translate its plain dataclasses. It does no I/O: the PDF has already been checked by
:mod:`meterai_verify.pdf_check` (in a worker process, see :mod:`meterai_verify.sandbox`) and
the ledger is reached through the ``lookup`` callable.

A seal is **genuine** when all of these hold:

1. its signature is intact and valid, and the signer chains to the platform's root;
2. its byte range covers its whole revision;
3. the serial it names is ISSUED, for exactly the digest this signature signed;
4. nothing was changed after it beyond :data:`ALLOWED_CHANGES`, the issuer's policy.

The strict default policy allows, and reports, later signatures by other parties and
long-term validation data. A change to content, form values or annotations made after the
seal (a later signature whose widget covers the seal or its page counts as an annotation)
makes the seal **modified**: the signature still holds for the revision it covered, which
the checker can download and compare, but the document as shown is not what was stamped.
Failing 1 to 3 makes it **not-genuine**.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from meterai_verify.changes import Change
from meterai_verify.pdf_check import Coverage, PdfCheck, SignatureCheck
from meterai_verify.serial_facts import SerialFacts

__all__ = [
    "ALLOWED_CHANGES",
    "DocumentVerdict",
    "Reason",
    "SealVerdict",
    "Verdict",
    "judge_document",
    "judge_seal",
    "judge_serial",
]

ALLOWED_CHANGES = frozenset({Change.SIGNATURES, Change.VALIDATION_DATA})
"""Changes after a seal that leave it genuine (reported all the same)."""


class Verdict(enum.Enum):
    """The machine-readable verdict; the values are the web site's ``data-verdict``."""

    ISSUED = "issued"
    """A serial the ledger has issued (no document compared)."""
    UNKNOWN = "unknown"
    """A serial the ledger has not issued: unknown, void or still pending."""
    GENUINE = "genuine"
    MODIFIED = "modified"
    NOT_GENUINE = "not-genuine"


class Reason(enum.Enum):
    """Why a seal is not genuine; the value is a stable code, the message English."""

    SIGNATURE_BROKEN = "signature_broken"
    UNTRUSTED_SIGNER = "untrusted_signer"
    PARTIAL_COVERAGE = "partial_coverage"
    SERIAL_NOT_ISSUED = "serial_not_issued"
    DIGEST_MISMATCH = "digest_mismatch"
    CHANGED_AFTER_STAMPING = "changed_after_stamping"
    NO_SEAL = "no_seal"

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Reason.SIGNATURE_BROKEN: "the signature does not match the document (altered or corrupt)",
    Reason.UNTRUSTED_SIGNER: "the signer is not the e-meterai issuer",
    Reason.PARTIAL_COVERAGE: "the signature does not cover its whole revision",
    Reason.SERIAL_NOT_ISSUED: "the serial is not issued",
    Reason.DIGEST_MISMATCH: "the serial was issued for a different document",
    Reason.CHANGED_AFTER_STAMPING: "the document was changed after stamping beyond the policy",
    Reason.NO_SEAL: "no e-meterai seal found in this document",
}


@dataclass(frozen=True)
class SealVerdict:
    """The verdict on one e-meterai seal of a document."""

    serial: str
    field_name: str
    verdict: Verdict
    reasons: tuple[Reason, ...]
    signature_valid: bool
    trusted: bool
    coverage_ok: bool
    """The byte range covers the seal's whole revision."""
    serial_status: str
    digest_matches: bool
    changes: tuple[Change, ...]
    """What was changed after the seal; empty: nothing."""
    signed_revision_end: int
    """``pdf[:signed_revision_end]`` is the exact revision that was stamped."""
    signing_time: datetime | None
    timestamp_time: datetime | None
    level: str
    facts: SerialFacts

    @property
    def problem(self) -> str:
        return "; ".join(reason.message for reason in self.reasons)


@dataclass(frozen=True)
class DocumentVerdict:
    """The verdict on an uploaded document: the worst of its seals' verdicts."""

    verdict: Verdict
    seals: tuple[SealVerdict, ...]
    reasons: tuple[Reason, ...]
    """Document-level reasons (no seal at all)."""
    other_signatures: int
    """Signatures in the document that are not e-meterai seals (other parties)."""

    @property
    def genuine(self) -> bool:
        return self.verdict is Verdict.GENUINE

    @property
    def problem(self) -> str:
        return "; ".join(reason.message for reason in self.reasons)


def judge_serial(facts: SerialFacts) -> Verdict:
    return Verdict.ISSUED if facts.status == "ISSUED" else Verdict.UNKNOWN


def judge_seal(signature: SignatureCheck, facts: SerialFacts) -> SealVerdict:
    """Judge one seal against the ledger's facts about the serial it names."""
    signature_valid = bool(signature.intact and signature.valid)
    coverage_ok = signature.coverage is not Coverage.PARTIAL
    digest_matches = bool(facts.document_digest) and (
        (facts.document_digest or "").lower() == (signature.message_digest or "").lower()
    )
    reasons: list[Reason] = []
    if not signature_valid:
        reasons.append(Reason.SIGNATURE_BROKEN)
    if signature_valid and not signature.trusted:
        # Only a signature that holds can be judged by its signer: a broken one says nothing
        # about who made it, so a tampered document is not blamed on the issuer.
        reasons.append(Reason.UNTRUSTED_SIGNER)
    if not coverage_ok:
        reasons.append(Reason.PARTIAL_COVERAGE)
    if facts.status != "ISSUED":
        reasons.append(Reason.SERIAL_NOT_ISSUED)
    elif not digest_matches:
        reasons.append(Reason.DIGEST_MISMATCH)
    beyond_policy = bool(set(signature.changes) - ALLOWED_CHANGES) or (
        signature.error is None and not signature.modifications_acceptable
    )
    if reasons:
        verdict = Verdict.NOT_GENUINE
        if beyond_policy:
            reasons.append(Reason.CHANGED_AFTER_STAMPING)
    elif beyond_policy:
        verdict = Verdict.MODIFIED
        reasons.append(Reason.CHANGED_AFTER_STAMPING)
    else:
        verdict = Verdict.GENUINE
    return SealVerdict(
        serial=signature.serial or "",
        field_name=signature.field_name,
        verdict=verdict,
        reasons=tuple(reasons),
        signature_valid=signature_valid,
        trusted=bool(signature.trusted),
        coverage_ok=coverage_ok,
        serial_status=facts.status,
        digest_matches=digest_matches,
        changes=signature.changes,
        signed_revision_end=signature.signed_revision_end,
        signing_time=signature.signing_time,
        timestamp_time=signature.timestamp_time,
        level=signature.level,
        facts=facts,
    )


_RANK = {Verdict.GENUINE: 0, Verdict.MODIFIED: 1, Verdict.NOT_GENUINE: 2}


def judge_document(check: PdfCheck, lookup: Callable[[str], SerialFacts]) -> DocumentVerdict:
    """Judge every seal of a checked document; ``lookup`` reads a serial's ledger facts."""
    seals = tuple(
        judge_seal(signature, lookup(signature.serial))
        for signature in check.signatures
        if signature.serial
    )
    others = sum(1 for signature in check.signatures if not signature.serial)
    if not seals:
        return DocumentVerdict(Verdict.NOT_GENUINE, (), (Reason.NO_SEAL,), others)
    worst = max((seal.verdict for seal in seals), key=_RANK.__getitem__)
    return DocumentVerdict(worst, seals, (), others)
