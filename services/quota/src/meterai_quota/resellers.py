"""Resellers and sub-accounts: who may spend which quota (their API keys: :mod:`.api_keys`).

A reseller either owns quota (a top-level, *root* reseller, with its own ledger accounts) or is a
sub-account of another reseller and spends its root's quota while keeping its own orders and jobs.
The root is stored on every reseller, so resolving the quota owner is one primary-key read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .adapters.tables import accounts, resellers
from .domain.errors import InvalidArgument, ResellerNameTaken, ResellerNotFound
from .domain.ledger_rules import AccountKind
from .domain.model import Reseller

__all__ = ["create_reseller", "get_reseller", "quota_owner_of"]


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


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
    unique_name: bool = False,
) -> Reseller:
    """Register a reseller; a top-level one gets its (empty) ledger accounts.

    :param parent_id: make this a sub-account spending the parent's root quota.
    :param reseller_id: choose the id (e.g. when importing); a UUID is drawn otherwise.
    :param unique_name: check for a name another reseller has (without case and surrounding
        space) before inserting, as ``meterai admin create-reseller`` asks. The database
        refuses a taken name in any case (unique index on ``lower(name)``, migration 0008), so
        two operators creating the same name in the same instant get one reseller and one
        :class:`ResellerNameTaken`; the early check only names the reseller holding it.
    """
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise InvalidArgument("reseller name must be 1-200 characters")
    if unique_name:
        taken = conn.scalar(
            sa.select(resellers.c.id).where(sa.func.lower(resellers.c.name) == name.lower())
        )
        if taken is not None:
            raise ResellerNameTaken(
                f"a reseller named {name!r} exists already ({taken}); choose another name",
                name=name,
            )
    new_id = reseller_id or str(uuid.uuid4())
    root_id = new_id if parent_id is None else get_reseller(conn, parent_id).root_id
    created_at = _now(now)
    try:
        with conn.begin_nested():
            conn.execute(
                resellers.insert().values(
                    id=new_id,
                    name=name,
                    parent_id=parent_id,
                    root_id=root_id,
                    created_at=created_at,
                )
            )
    except sa.exc.IntegrityError as error:
        if not _names_collide(error):
            raise
        raise ResellerNameTaken(
            f"a reseller named {name!r} exists already; choose another name", name=name
        ) from None
    if parent_id is None:
        conn.execute(
            accounts.insert(),
            [{"owner_id": new_id, "kind": k.value, "balance": 0} for k in AccountKind],
        )
    return Reseller(new_id, name, parent_id, root_id, created_at)


def _names_collide(error: sa.exc.IntegrityError) -> bool:
    """The insert broke the unique name index (and not, say, a missing parent)."""
    text = str(error.orig).lower()
    return (
        "uq_quota_resellers_name" in text
        or "quota_resellers.name" in text
        or ("unique" in text and "lower(name)" in text)
    )


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
