"""Client certificates that authenticate a reseller (mTLS), registered and revoked like keys.

The platform CA issues a reseller a certificate naming it (``meterai admin tls
issue-client``); the TLS handshake proves the holder has its key and that the CA signed it.
Registration adds what the CA alone cannot: revocation. A registered certificate is stored as
a credential in the key table — the SHA-256 of a name no API key can have — so it is listed,
revoked and resolved on every call exactly like a key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .adapters.tables import api_keys, resellers
from .domain.errors import Unauthenticated
from .domain.model import Principal, Role
from .resellers import get_reseller

__all__ = [
    "authenticate_certificate",
    "certificate_fingerprint",
    "register_certificate",
    "revoke_certificate",
]

_PREFIX = "cert:"


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 of a client certificate's DER, hex: how operators name it to revoke it."""
    return hashlib.sha256(der).hexdigest()


def _credential_hash(fingerprint: str) -> str:
    return hashlib.sha256((_PREFIX + fingerprint.lower()).encode()).hexdigest()


def register_certificate(
    conn: Connection, reseller_id: str, der: bytes, *, now: datetime | None = None
) -> str:
    """Let the client certificate ``der`` (issued for ``reseller_id``) authenticate as that
    reseller; returns its fingerprint."""
    get_reseller(conn, reseller_id)
    fingerprint = certificate_fingerprint(der)
    conn.execute(
        api_keys.insert().values(
            key_hash=_credential_hash(fingerprint),
            prefix=(_PREFIX + fingerprint)[:12],
            reseller_id=reseller_id,
            role=Role.RESELLER.value,
            created_at=now or datetime.now(UTC),
        )
    )
    return fingerprint


_RESOLVE = (
    sa.select(api_keys.c.role, api_keys.c.reseller_id, resellers.c.root_id, api_keys.c.revoked_at)
    .select_from(api_keys.join(resellers, resellers.c.id == api_keys.c.reseller_id))
    .where(api_keys.c.key_hash == sa.bindparam("b_hash"))
)
"""Built once: every call on a client-certificate port runs it."""


def authenticate_certificate(conn: Connection, reseller_id: str, der: bytes) -> Principal:
    """Resolve a verified client certificate to its reseller, or raise
    :class:`Unauthenticated`: it must be registered, not revoked, and registered to the very
    reseller its certificate names."""
    fingerprint = certificate_fingerprint(der)
    row = conn.execute(_RESOLVE, {"b_hash": _credential_hash(fingerprint)}).first()
    if row is None or row.reseller_id != reseller_id:
        raise Unauthenticated(
            f"client certificate {fingerprint[:16]}... is not registered with the platform; "
            "ask the operator for one ('meterai admin tls issue-client')"
        )
    if row.revoked_at is not None:
        raise Unauthenticated(
            f"client certificate {fingerprint[:16]}... was revoked; ask the operator for a new one"
        )
    return Principal(reseller_id=row.reseller_id, quota_owner_id=row.root_id, role=Role(row.role))


def revoke_certificate(conn: Connection, fingerprint: str, *, now: datetime | None = None) -> bool:
    """Revoke a registered client certificate by its fingerprint; ``False`` if unknown."""
    result = conn.execute(
        api_keys.update()
        .where(
            api_keys.c.key_hash == _credential_hash(fingerprint),
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now or datetime.now(UTC))
    )
    return result.rowcount == 1
