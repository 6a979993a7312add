"""The JSON API's shapes: what ``/openapi.json`` promises and every answer keeps to."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["DocumentOut", "ErrorOut", "RevisionOut", "SealOut", "SerialOut"]

ChangeName = Literal["form_filling", "annotations", "signatures", "content", "validation_data"]


class SerialOut(BaseModel):
    """What anyone may learn from a serial: the facts the seal shows, no internal ids."""

    serial: str
    verdict: Literal["issued", "unknown"]
    status: Literal["ISSUED", "PENDING", "VOID", "UNKNOWN"]
    stamped_at: datetime | None = Field(
        None, description="When the platform issued the serial, by the platform's own clock."
    )
    trusted_time: datetime | None = Field(
        None,
        description="The time a timestamp authority certified for the seal's signature "
        "(RFC 3161 genTime of its signature timestamp, PAdES B-T and above); null for a seal "
        "without one (B-B) or a serial not issued.",
    )
    value_idr: int | None = None
    document_type: str | None = None
    document_number: str | None = None
    document_date: date | None = None
    reseller_name: str | None = None


class RevisionOut(BaseModel):
    """The exact revision a seal covered: the first ``length`` bytes of the upload."""

    length: int = Field(ge=0)
    sha256: str
    url: str | None = Field(None, description="Download, kept for a while after the upload.")


class SealOut(BaseModel):
    serial: str
    verdict: Literal["genuine", "modified", "not-genuine"]
    reasons: list[str] = Field(description="Stable codes, e.g. digest_mismatch.")
    signature_valid: bool
    trusted: bool
    coverage_ok: bool
    serial_status: Literal["ISSUED", "PENDING", "VOID", "UNKNOWN"]
    digest_matches: bool
    changes_after: list[ChangeName] = Field(description="Empty: nothing changed after it.")
    signing_time: datetime | None = None
    trusted_time: datetime | None = None
    level: str
    stamped_revision: RevisionOut | None = None
    document_type: str | None = None
    reseller_name: str | None = None


class DocumentOut(BaseModel):
    verdict: Literal["genuine", "modified", "not-genuine"]
    genuine: bool
    reasons: list[str]
    other_signatures: int = Field(ge=0)
    seals: list[SealOut]


class ErrorOut(BaseModel):
    detail: str
