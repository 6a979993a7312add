"""Resellers, sub-accounts and API keys: who may spend which quota.

A reseller either owns quota (a top-level, *root* reseller, with its own ledger accounts) or is a
sub-account of another reseller and spends its root's quota while keeping its own orders and jobs.
The root is stored on every reseller, so resolving the quota owner is one primary-key read.

API keys are 256-bit random strings; only their SHA-256 is stored. A slow password hash (bcrypt,
argon2) protects low-entropy secrets against offline guessing, which is pointless for a key drawn
from 2**256 possibilities and would add tens of milliseconds to every authenticated RPC.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .adapters.tables import accounts, api_keys, resellers
from .domain.errors import InvalidArgument, ResellerNotFound, Unauthenticated
from .domain.ledger_rules import AccountKind
from .domain.model import Principal, Reseller, Role

__all__ = [
    "API_KEY_PREFIX",
    "authenticate",
    "authenticate_certificate",
    "certificate_fingerprint",
    "create_reseller",
    "get_reseller",
    "issue_api_key",
    "quota_owner_of",
    "register_certificate",
    "revoke_api_key",
    "revoke_certificate",
]

API_KEY_PREFIX = "mtk_"
"""Marks meterai keys so secret scanners can find leaked ones and typos fail without a lookup."""


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _reseller(row: sa.Row[tuple[str, str, str | None, str, datetime]]) -> Reseller:
    return Reseller(
        id=row.id,
        name=row.name,
        parent_id=row.parent_id,
        root_id=row.root_id,
        created_at=row.created_at,
    )


def create_reseller(
    conn: Connection,
    name: str,
    *,
    parent_id: str | None = None,
    reseller_id: str | None = None,
    now: datetime | None = None,
) -> Reseller:
    """Register a reseller; a top-level one gets its (empty) ledger accounts.

    :param parent_id: make this a sub-account spending the parent's root quota.
    :param reseller_id: choose the id (e.g. when importing); a UUID is drawn otherwise.
    """
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise InvalidArgument("reseller name must be 1-200 characters")
    new_id = reseller_id or str(uuid.uuid4())
    root_id = new_id if parent_id is None else get_reseller(conn, parent_id).root_id
    created_at = _now(now)
    conn.execute(
        resellers.insert().values(
            id=new_id, name=name, parent_id=parent_id, root_id=root_id, created_at=created_at
        )
    )
    if parent_id is None:
        conn.execute(
            accounts.insert(),
            [{"owner_id": new_id, "kind": k.value, "balance": 0} for k in AccountKind],
        )
    return Reseller(new_id, name, parent_id, root_id, created_at)


def get_reseller(conn: Connection, reseller_id: str) -> Reseller:
    row = conn.execute(sa.select(resellers).where(resellers.c.id == reseller_id)).first()
    if row is None:
        raise ResellerNotFound(f"reseller {reseller_id} does not exist")
    return _reseller(row)


_ROOT_OF = sa.select(resellers.c.root_id).where(resellers.c.id == sa.bindparam("b_reseller_id"))
"""Built once: every quota check of a submit resolves the paying owner."""


def quota_owner_of(conn: Connection, reseller_id: str) -> str:
    """The root reseller whose ledger pays for ``reseller_id``'s stamps."""
    owner = conn.scalar(_ROOT_OF, {"b_reseller_id": reseller_id})
    if owner is None:
        raise ResellerNotFound(f"reseller {reseller_id} does not exist")
    return str(owner)


def issue_api_key(
    conn: Connection,
    reseller_id: str | None,
    role: Role | str = Role.RESELLER,
    *,
    now: datetime | None = None,
) -> str:
    """Create an API key and return its plaintext, which is never stored and cannot be shown
    again.

    :param reseller_id: the reseller the key acts for; must be ``None`` for operator keys,
        because operators are platform staff, not resellers.
    """
    try:
        role = Role(role)
    except ValueError as error:
        raise InvalidArgument(f"unknown role {role!r}") from error
    if role is Role.OPERATOR and reseller_id is not None:
        raise InvalidArgument("operator keys do not belong to a reseller")
    if role is Role.RESELLER:
        if reseller_id is None:
            raise InvalidArgument("reseller keys need a reseller")
        get_reseller(conn, reseller_id)
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        api_keys.insert().values(
            key_hash=_hash(api_key), reseller_id=reseller_id, role=role.value, created_at=_now(now)
        )
    )
    return api_key


def authenticate(conn: Connection, api_key: str) -> Principal:
    """Resolve an API key to the principal it stands for, or raise :class:`Unauthenticated`."""
    if not isinstance(api_key, str) or not api_key.startswith(API_KEY_PREFIX):
        raise Unauthenticated("invalid API key")
    row = conn.execute(
        sa.select(api_keys.c.role, api_keys.c.reseller_id, resellers.c.root_id)
        .select_from(api_keys.outerjoin(resellers, resellers.c.id == api_keys.c.reseller_id))
        .where(api_keys.c.key_hash == _hash(api_key), api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None:
        raise Unauthenticated("invalid API key")
    return Principal(reseller_id=row.reseller_id, quota_owner_id=row.root_id, role=Role(row.role))


def revoke_api_key(conn: Connection, api_key: str, *, now: datetime | None = None) -> bool:
    """Revoke a key; return ``False`` if it was unknown or already revoked."""
    result = conn.execute(
        api_keys.update()
        .where(api_keys.c.key_hash == _hash(api_key), api_keys.c.revoked_at.is_(None))
        .values(revoked_at=_now(now))
    )
    return result.rowcount == 1


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 of a client certificate's DER, hex: how operators name it to revoke it."""
    return hashlib.sha256(der).hexdigest()


def _certificate_credential(fingerprint: str) -> str:
    """A registered client certificate is a credential like a key: it is stored the same way,
    as the hash of a name no key can have, and revoked the same way."""
    return "cert:" + fingerprint


def register_certificate(
    conn: Connection, reseller_id: str, der: bytes, *, now: datetime | None = None
) -> str:
    """Let the client certificate ``der`` (issued for ``reseller_id``) authenticate as that
    reseller; returns its fingerprint."""
    get_reseller(conn, reseller_id)
    fingerprint = certificate_fingerprint(der)
    conn.execute(
        api_keys.insert().values(
            key_hash=_hash(_certificate_credential(fingerprint)),
            reseller_id=reseller_id,
            role=Role.RESELLER.value,
            created_at=_now(now),
        )
    )
    return fingerprint


def authenticate_certificate(conn: Connection, reseller_id: str, der: bytes) -> Principal:
    """Resolve a verified client certificate to its reseller, or raise
    :class:`Unauthenticated`: it must be registered, not revoked, and registered to the very
    reseller its certificate names."""
    fingerprint = certificate_fingerprint(der)
    row = conn.execute(
        sa.select(
            api_keys.c.role, api_keys.c.reseller_id, resellers.c.root_id, api_keys.c.revoked_at
        )
        .select_from(api_keys.join(resellers, resellers.c.id == api_keys.c.reseller_id))
        .where(api_keys.c.key_hash == _hash(_certificate_credential(fingerprint)))
    ).first()
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
            api_keys.c.key_hash == _hash(_certificate_credential(fingerprint.lower())),
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=_now(now))
    )
    return result.rowcount == 1
