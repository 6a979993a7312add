"""Public serial lookup: what a relying party may learn about a stamp from its serial."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .adapters.tables import resellers, serials
from .domain.errors import MalformedSerial
from .domain.model import SerialInfo, SerialStatus
from .domain.serials import is_well_formed

__all__ = ["verify_serial"]


def verify_serial(conn: Connection, serial: str) -> SerialInfo:
    """Look up a serial's status and the stamped document's digest and type.

    A malformed serial raises :class:`MalformedSerial` before any query, so typos are reported
    as typos and random probing costs no database work. Only facts about the stamp and the
    reseller's public name are returned, never the document number or date.
    """
    if not isinstance(serial, str) or not is_well_formed(serial):
        raise MalformedSerial("not a well-formed meterai serial; check for typing mistakes")
    row = conn.execute(
        sa.select(
            serials.c.status,
            serials.c.issued_at,
            serials.c.document_digest,
            serials.c.document_type,
            serials.c.reseller_id,
            resellers.c.name,
        )
        .select_from(serials.join(resellers, resellers.c.id == serials.c.reseller_id))
        .where(serials.c.serial == serial)
    ).first()
    if row is None:
        return SerialInfo(serial=serial, status=SerialStatus.UNKNOWN)
    return SerialInfo(
        serial=serial,
        status=SerialStatus(row.status),
        stamped_at=row.issued_at,
        document_digest=row.document_digest,
        document_type=row.document_type,
        reseller_id=row.reseller_id,
        reseller_name=row.name,
    )
