"""API keys: issued, resolved on every call, listed, revoked and rotated.

API keys are 256-bit random strings; only their SHA-256 is stored. A slow password hash (bcrypt,
argon2) protects low-entropy secrets against offline guessing, which is pointless for a key drawn
from 2**256 possibilities and would add tens of milliseconds to every authenticated RPC.

A key is named by its *key id*, the first 16 hex digits of that hash: safe to show, log and type,
and computable by the key's holder. Lookups by id are a range scan of the primary key (every
hash that starts with the id), so no second index is kept. The first characters of the
plaintext are kept as ``prefix`` only so a holder recognises which key a listing means.

Revocation is immediate: :func:`authenticate` reads the key's row on every call, so a key revoked
in one process is refused by every other on its next call. Rotation issues a new key for the
same principal and lets the old one live for a grace period (``expires_at``), so clients can
switch without an outage.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .adapters.tables import api_keys, resellers
from .domain.errors import ApiKeyInactive, ApiKeyNotFound, InvalidArgument, Unauthenticated
from .domain.model import ApiKey, Page, Principal, Role
from .domain.pagination import clamp_page_size, decode_token, encode_token
from .resellers import get_reseller

__all__ = [
    "API_KEY_PREFIX",
    "MAX_ROTATION_GRACE",
    "authenticate",
    "create_api_key",
    "get_api_key",
    "issue_api_key",
    "key_id_of",
    "list_api_keys",
    "revoke_api_key",
    "revoke_key",
    "rotate_api_key",
]

API_KEY_PREFIX = "mtk_"
"""Marks meterai keys so secret scanners can find leaked ones and typos fail without a lookup."""
KEY_ID_LENGTH = 16
"""Hex digits of the hash that name a key: 64 bits, so two keys never share an id in practice."""
PREFIX_LENGTH = 12
"""Characters of the plaintext kept for recognition: ``mtk_`` and 8 of the 43 random ones."""
MAX_ROTATION_GRACE = timedelta(days=30)
"""Longest a rotated key may keep working: long enough to redeploy any client, short enough
that a rotation still retires the key."""
_KEY_ID = re.compile(rf"[0-9a-f]{{{KEY_ID_LENGTH}}}")
_LISTING = "api_keys"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def key_id_of(api_key: str) -> str:
    """The key id of a plaintext key (what listings show and revoke/rotate take)."""
    return _hash(api_key)[:KEY_ID_LENGTH]


def _api_key(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    return ApiKey(
        key_id=str(row.key_hash)[:KEY_ID_LENGTH],
        prefix=row.prefix,
        role=Role(row.role),
        reseller_id=row.reseller_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _insert(conn: Connection, reseller_id: str | None, role: Role | str, now: datetime) -> str:
    try:
        role = Role(role)
    except ValueError as error:
        raise InvalidArgument(f"unknown role {role!r}: 'reseller' or 'operator'") from error
    if role is Role.OPERATOR and reseller_id is not None:
        raise InvalidArgument("operator keys do not belong to a reseller: leave reseller_id empty")
    if role is Role.RESELLER:
        if not reseller_id:
            raise InvalidArgument("reseller keys need a reseller: set reseller_id")
        get_reseller(conn, reseller_id)
    api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        api_keys.insert().values(
            key_hash=_hash(api_key),
            prefix=api_key[:PREFIX_LENGTH],
            reseller_id=reseller_id,
            role=role.value,
            created_at=now,
        )
    )
    return api_key


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
    return _insert(conn, reseller_id, role, _now(now))


def create_api_key(
    conn: Connection,
    reseller_id: str | None,
    role: Role | str = Role.RESELLER,
    *,
    now: datetime | None = None,
) -> tuple[ApiKey, str]:
    """:func:`issue_api_key`, also returning what listings will show of the new key."""
    api_key = _insert(conn, reseller_id, role, _now(now))
    return get_api_key(conn, key_id_of(api_key)), api_key


_AUTHENTICATE = (
    sa.select(api_keys.c.role, api_keys.c.reseller_id, resellers.c.root_id)
    .select_from(api_keys.outerjoin(resellers, resellers.c.id == api_keys.c.reseller_id))
    .where(
        api_keys.c.key_hash == sa.bindparam("b_key_hash"),
        api_keys.c.revoked_at.is_(None),
        sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > sa.bindparam("b_now")),
    )
)
"""Built once: every authenticated call runs it."""


def authenticate(conn: Connection, api_key: str, *, now: datetime | None = None) -> Principal:
    """Resolve an API key to the principal it stands for, or raise :class:`Unauthenticated`
    for a key that is unknown, revoked or past the end of its rotation grace period."""
    if not isinstance(api_key, str) or not api_key.startswith(API_KEY_PREFIX):
        raise Unauthenticated(
            f"invalid API key: meterai keys start with {API_KEY_PREFIX!r}; "
            "send one in the 'x-api-key' metadata entry"
        )
    row = conn.execute(_AUTHENTICATE, {"b_key_hash": _hash(api_key), "b_now": _now(now)}).first()
    if row is None:
        raise Unauthenticated(
            "invalid API key: it is unknown, revoked or expired; ask the operator for a new one"
        )
    return Principal(reseller_id=row.reseller_id, quota_owner_id=row.root_id, role=Role(row.role))


def _by_id(key_id: str) -> sa.ColumnElement[bool]:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise InvalidArgument(
            f"key id must be {KEY_ID_LENGTH} lowercase hex digits, as 'meterai admin keys list' "
            "shows them"
        )
    # Every hash starting with the id: the hex digits sort below "g".
    return sa.and_(api_keys.c.key_hash >= key_id, api_keys.c.key_hash < key_id + "g")


def get_api_key(conn: Connection, key_id: str, *, for_update: bool = False) -> ApiKey:
    """The key named ``key_id``, or raise :class:`ApiKeyNotFound`."""
    query = sa.select(api_keys).where(_by_id(key_id))
    if for_update:
        query = query.with_for_update()
    rows = conn.execute(query.limit(2)).all()
    if len(rows) != 1:
        raise ApiKeyNotFound(f"no API key with id {key_id}; see 'meterai admin keys list'")
    return _api_key(rows[0])


def list_api_keys(
    conn: Connection,
    *,
    reseller_id: str | None = None,
    include_inactive: bool = False,
    page_size: int | None = None,
    page_token: str | None = None,
    now: datetime | None = None,
) -> Page[ApiKey]:
    """API keys, newest first.

    :param reseller_id: only this reseller's keys.
    :param include_inactive: also keys that are revoked or past their grace period.
    :param page_size: default 20, capped at 100.
    :param page_token: ``next_page_token`` of the previous page.
    """
    size = clamp_page_size(page_size)
    query = (
        sa.select(api_keys)
        .order_by(api_keys.c.created_at.desc(), api_keys.c.key_hash.desc())
        .limit(size + 1)
    )
    if reseller_id:
        get_reseller(conn, reseller_id)
        query = query.where(api_keys.c.reseller_id == reseller_id)
    if not include_inactive:
        query = query.where(
            api_keys.c.revoked_at.is_(None),
            sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > _now(now)),
        )
    if page_token:
        stamp, last_id = decode_token(_LISTING, page_token, (str, str))
        try:
            created_at = datetime.fromisoformat(stamp)
        except ValueError as error:
            raise InvalidArgument("page token is not valid") from error
        # The token names the last key by its id, a prefix of its hash: every hash below the
        # id is below the last hash too.
        query = query.where(
            sa.or_(
                api_keys.c.created_at < created_at,
                sa.and_(api_keys.c.created_at == created_at, api_keys.c.key_hash < last_id),
            )
        )
    rows = conn.execute(query).all()
    items = tuple(_api_key(row) for row in rows[:size])
    token = None
    if len(rows) > size:
        last = items[-1]
        token = encode_token(_LISTING, [last.created_at.isoformat(), last.key_id])
    return Page(items, token)


def revoke_api_key(conn: Connection, api_key: str, *, now: datetime | None = None) -> bool:
    """Revoke a key given in plaintext; return ``False`` if it was unknown or already revoked."""
    result = conn.execute(
        api_keys.update()
        .where(api_keys.c.key_hash == _hash(api_key), api_keys.c.revoked_at.is_(None))
        .values(revoked_at=_now(now))
    )
    return result.rowcount == 1


def revoke_key(conn: Connection, key_id: str, *, now: datetime | None = None) -> ApiKey:
    """Revoke the key named ``key_id`` from now on; revoking it again changes nothing."""
    key = get_api_key(conn, key_id, for_update=True)
    if key.revoked_at is None:
        conn.execute(
            api_keys.update()
            .where(_by_id(key_id), api_keys.c.revoked_at.is_(None))
            .values(revoked_at=_now(now))
        )
        key = get_api_key(conn, key_id)
    return key


def rotate_api_key(
    conn: Connection, key_id: str, grace: timedelta, *, now: datetime | None = None
) -> tuple[ApiKey, ApiKey, str]:
    """Issue a new key for the principal of ``key_id`` and end the old one after ``grace``.

    Returns ``(old key, new key, new plaintext)``. A grace of zero ends the old key at once. A
    key already ending sooner (rotated before) keeps its earlier end.
    """
    if grace < timedelta(0) or grace > MAX_ROTATION_GRACE:
        raise InvalidArgument(
            f"grace period must be between 0 and {MAX_ROTATION_GRACE.days} days, "
            f"not {grace.total_seconds():g} s"
        )
    moment = _now(now)
    old = get_api_key(conn, key_id, for_update=True)
    if not old.active_at(moment):
        raise ApiKeyInactive(
            f"API key {key_id} is revoked or expired and cannot be rotated; create a new key "
            "with 'meterai admin keys create'"
        )
    ends = moment + grace
    if old.expires_at is None or old.expires_at > ends:
        conn.execute(api_keys.update().where(_by_id(key_id)).values(expires_at=ends))
    plaintext = _insert(conn, old.reseller_id, old.role, moment)
    return get_api_key(conn, key_id), get_api_key(conn, key_id_of(plaintext)), plaintext
