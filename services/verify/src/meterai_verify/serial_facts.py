"""What the public may read about a serial: the facts the seal itself shows, from the ledger.

The reseller recorded the document's type, number and date when stamping; the seal's
face value is the duty paid. The reseller is named by its public name only: its internal id
never leaves the platform.

Two times are told apart: ``stamped_at`` is the platform's own clock when it issued the serial;
``trusted_time`` is the time a timestamp authority certified in the seal's signature timestamp
(PAdES B-T and above), recorded at finishing. A B-B seal has no trusted time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from meterai_quota.adapters.tables import resellers, serials
from meterai_quota.domain.money import UNIT_PRICE_IDR
from meterai_quota.domain.serials import is_well_formed

__all__ = ["SerialFacts", "serial_facts"]


@dataclass(frozen=True)
class SerialFacts:
    """A serial as a checker sees it."""

    serial: str
    status: str
    """``ISSUED``, ``PENDING`` (a stamp still being made), ``VOID`` or ``UNKNOWN``."""
    stamped_at: datetime | None = None
    """When the platform issued the serial, by its own clock."""
    trusted_time: datetime | None = None
    """The ``genTime`` the timestamp authority certified for the seal's signature; ``None``
    for a seal without a signature timestamp (B-B) or a serial not issued."""
    document_digest: str | None = None
    """Hex SHA-256 the seal's signature signed, recorded when the serial was issued."""
    document_type: str | None = None
    document_number: str | None = None
    document_date: date | None = None
    value_idr: int | None = None
    """Face value of the seal (the duty paid), for an issued serial."""
    reseller_name: str | None = None

    @property
    def well_formed(self) -> bool:
        return is_well_formed(self.serial)


_STATUS = {"ISSUED": "ISSUED", "HELD": "PENDING", "VOID": "VOID"}


def serial_facts(conn: Connection, serial: str) -> SerialFacts:
    """Look ``serial`` up; a malformed or unknown serial is ``UNKNOWN`` without a query
    for the malformed one, so probing with random strings costs no database work."""
    serial = serial.strip().upper()
    if not is_well_formed(serial):
        return SerialFacts(serial=serial, status="UNKNOWN")
    row = conn.execute(
        sa.select(
            serials.c.status,
            serials.c.issued_at,
            serials.c.trusted_time,
            serials.c.document_digest,
            serials.c.document_type,
            serials.c.document_number,
            serials.c.document_date,
            resellers.c.name,
        )
        .select_from(serials.join(resellers, resellers.c.id == serials.c.reseller_id))
        .where(serials.c.serial == serial)
    ).first()
    if row is None:
        return SerialFacts(serial=serial, status="UNKNOWN")
    status = _STATUS.get(row.status, "UNKNOWN")
    issued = status == "ISSUED"
    return SerialFacts(
        serial=serial,
        status=status,
        stamped_at=row.issued_at,
        trusted_time=row.trusted_time if issued else None,
        document_digest=row.document_digest,
        document_type=row.document_type,
        document_number=row.document_number if issued else None,
        document_date=row.document_date if issued else None,
        value_idr=UNIT_PRICE_IDR if issued else None,
        reseller_name=row.name,
    )
