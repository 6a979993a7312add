"""Stamping jobs: what a reseller asked for and how far it got.

A job moves ``ACCEPTED -> HELD -> PREPARED -> SIGNED -> DONE``; or ends ``FAILED`` with its
held unit refunded, or ``DEAD_LETTERED`` when the signing tier gave up on it. Submission does
ACCEPTED, HELD and PREPARED in one database transaction, so a job is visible only once its quota
hold, its prepared document and its signing message all exist.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "TERMINAL_STATES",
    "DocumentFacts",
    "IdempotencyConflict",
    "InvalidSubmission",
    "Job",
    "JobNotFound",
    "JobNotReady",
    "JobState",
    "Placement",
    "StampingError",
    "SubmitDocument",
    "seal_reason",
    "submission_fingerprint",
    "validate_submission",
    "verify_url",
]


class StampingError(Exception):
    """Base of stamping errors; ``code`` names the gRPC status the API answers with."""

    code = "INTERNAL"


class InvalidSubmission(StampingError):
    code = "INVALID_ARGUMENT"


class IdempotencyConflict(StampingError):
    code = "INVALID_ARGUMENT"


class JobNotFound(StampingError):
    code = "NOT_FOUND"


class JobNotReady(StampingError):
    code = "FAILED_PRECONDITION"


class JobState(StrEnum):
    ACCEPTED = "ACCEPTED"
    HELD = "HELD"
    PREPARED = "PREPARED"
    SIGNED = "SIGNED"
    DONE = "DONE"
    FAILED = "FAILED"
    DEAD_LETTERED = "DEAD_LETTERED"


TERMINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.DEAD_LETTERED})


@dataclass(frozen=True)
class Placement:
    """Where the seal goes: 1-based page, rectangle in points from the displayed bottom-left."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class DocumentFacts:
    """What the serial is recorded against; shown to anyone who verifies it."""

    document_type: str
    document_number: str = ""
    document_date: date | None = None
    document_value_idr: int = 0


@dataclass(frozen=True)
class SubmitDocument:
    """Command: stamp ``pdf`` for ``reseller_id``, charging the quota of ``owner_id``."""

    reseller_id: str
    owner_id: str
    pdf: bytes
    placement: Placement
    facts: DocumentFacts
    idempotency_key: str
    filename: str = "document.pdf"
    password: str | None = None
    redriven_from: str | None = None
    """Set when an operator re-drives a dead-lettered job: the job this one replaces."""


@dataclass(frozen=True)
class Job:
    job_id: str
    reseller_id: str
    owner_id: str
    state: JobState
    serial: str | None
    filename: str
    facts: DocumentFacts
    created_at: datetime
    updated_at: datetime
    digest: str | None = None
    contents_start: int | None = None
    contents_end: int | None = None
    stamped_size: int | None = None
    failure_code: str | None = None
    failure_reason: str | None = None
    refunded: bool = False
    source_size: int | None = None
    """Length of the uploaded document: the prefix of the prepared one."""
    redriven_from: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_FILENAME_FORBIDDEN = re.compile(r"[/\\\x00-\x1f]")


def validate_submission(command: SubmitDocument) -> None:
    """Reject what no document could satisfy, before any PDF work or quota is touched."""
    if not _KEY.match(command.idempotency_key):
        raise InvalidSubmission(
            "idempotency_key is required: 1-200 printable ASCII characters, unique per document"
        )
    if not command.pdf:
        raise InvalidSubmission("pdf is empty: send the document's bytes")
    placement = command.placement
    if placement.page < 1:
        raise InvalidSubmission(f"placement.page must be 1 or more, got {placement.page}")
    if not (placement.x1 > placement.x0 and placement.y1 > placement.y0):
        raise InvalidSubmission(
            "placement.rect must have x1 > x0 and y1 > y0 (points from the bottom-left corner)"
        )
    facts = command.facts
    if not facts.document_type.strip():
        raise InvalidSubmission("metadata.document_type is required (e.g. 'Surat Lamaran')")
    # The same limits the ledger enforces when it issues the serial: a job accepted here must
    # never fail at the end for metadata it could have refused at the start.
    if len(facts.document_type) > 64 or not facts.document_type.isprintable():
        raise InvalidSubmission("metadata.document_type is 64 printable characters at most")
    if len(facts.document_number) > 128 or not facts.document_number.isprintable():
        raise InvalidSubmission("metadata.document_number is 128 printable characters at most")
    if facts.document_value_idr < 0:
        raise InvalidSubmission("metadata.document_value_idr must not be negative")
    if _FILENAME_FORBIDDEN.search(command.filename) or len(command.filename) > 255:
        raise InvalidSubmission("filename must be a plain file name without path separators")


def submission_fingerprint(command: SubmitDocument) -> str:
    """Hash of everything that defines the request, to tell a replay from a different request
    that reuses an idempotency key."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(command.pdf).digest())
    p, f = command.placement, command.facts
    h.update(
        repr(
            (
                p.page,
                p.x0,
                p.y0,
                p.x1,
                p.y1,
                f.document_type,
                f.document_number,
                f.document_date.isoformat() if f.document_date else "",
                f.document_value_idr,
            )
        ).encode()
    )
    return h.hexdigest()


def seal_reason(serial: str) -> str:
    """The signature's /Reason: names the serial so any PDF reader shows which stamp it is."""
    return f"e-Meterai {serial}"


def verify_url(base_url: str, serial: str) -> str:
    return f"{base_url.rstrip('/')}/{serial}"
