"""A reseller's webhook endpoints: register, list, delete, rotate the secret.

Every function takes the caller's connection (one transaction) and the reseller from the
caller's credential; an endpoint of another reseller is "not found", never "forbidden".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import EndpointNotFound, InvalidEndpoint, TooManyEndpoints
from .signatures import new_secret
from .tables import deliveries, endpoints

__all__ = [
    "MAX_ENDPOINTS",
    "Endpoint",
    "check_url",
    "create_endpoint",
    "delete_endpoint",
    "endpoints_of",
    "rotate_secret",
]

MAX_ENDPOINTS = 10
"""Per reseller: each event is posted to each endpoint, so this bounds one job's fan-out."""
DEFAULT_OVERLAP = timedelta(days=1)
MAX_OVERLAP = timedelta(days=7)
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Endpoint:
    id: str
    reseller_id: str
    url: str
    description: str
    created_at: datetime
    previous_expires_at: datetime | None


def check_url(url: str, *, allow_http: bool) -> str:
    """The URL if the platform may post to it; ``https`` only unless ``allow_http``.

    Credentials in the URL are refused: they would be stored and shown with the endpoint,
    and the signature already authenticates the platform to the receiver.
    """
    url = url.strip() if isinstance(url, str) else ""
    if not url or len(url) > 2000:
        raise InvalidEndpoint("url must be an https:// URL of at most 2000 characters")
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        hint = "" if allow_http else " (plain http is refused: receivers need TLS)"
        raise InvalidEndpoint(f"url must start with https://{hint}")
    if not parts.hostname:
        raise InvalidEndpoint("url has no host name")
    if parts.username or parts.password:
        raise InvalidEndpoint("url must not carry user:password; the signature authenticates")
    if parts.fragment:
        raise InvalidEndpoint("url must not have a #fragment")
    return url


def _endpoint(row: sa.Row[tuple[object, ...]]) -> Endpoint:
    return Endpoint(
        id=row.id,
        reseller_id=row.reseller_id,
        url=row.url,
        description=row.description,
        created_at=row.created_at,
        previous_expires_at=row.previous_expires_at,
    )


def create_endpoint(
    conn: Connection,
    reseller_id: str,
    url: str,
    description: str = "",
    *,
    allow_http: bool = False,
    now: datetime | None = None,
) -> tuple[Endpoint, str]:
    """Register ``url`` for the reseller's events; returns the endpoint and its secret."""
    url = check_url(url, allow_http=allow_http)
    description = (description or "").strip()
    if len(description) > 200:
        raise InvalidEndpoint("description must be at most 200 characters", field="description")
    count = conn.scalar(sa.select(sa.func.count()).where(endpoints.c.reseller_id == reseller_id))
    if (count or 0) >= MAX_ENDPOINTS:
        raise TooManyEndpoints(
            f"a reseller may register at most {MAX_ENDPOINTS} endpoints; delete one first"
        )
    secret = new_secret()
    values = {
        "id": str(uuid.uuid4()),
        "reseller_id": reseller_id,
        "url": url,
        "description": description,
        "secret": secret,
        "previous_secret": None,
        "previous_expires_at": None,
        "created_at": now or datetime.now(UTC),
    }
    conn.execute(endpoints.insert().values(**values))
    endpoint = Endpoint(
        id=str(values["id"]),
        reseller_id=reseller_id,
        url=url,
        description=description,
        created_at=values["created_at"],  # type: ignore[arg-type]
        previous_expires_at=None,
    )
    return endpoint, secret


def endpoints_of(conn: Connection, reseller_id: str) -> list[Endpoint]:
    rows = conn.execute(
        sa.select(endpoints)
        .where(endpoints.c.reseller_id == reseller_id)
        .order_by(endpoints.c.created_at, endpoints.c.id)
    )
    return [_endpoint(row) for row in rows]


def _owned(conn: Connection, reseller_id: str, endpoint_id: str) -> sa.Row[tuple[object, ...]]:
    if not isinstance(endpoint_id, str) or not _ID.match(endpoint_id):
        raise InvalidEndpoint("endpoint_id must be an endpoint id (a UUID)", field="endpoint_id")
    row = conn.execute(
        sa.select(endpoints).where(
            endpoints.c.id == endpoint_id, endpoints.c.reseller_id == reseller_id
        )
    ).first()
    if row is None:
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id} for this reseller")
    return row


def delete_endpoint(conn: Connection, reseller_id: str, endpoint_id: str) -> Endpoint:
    """Remove the endpoint and its delivery log: nothing more is posted to it."""
    row = _owned(conn, reseller_id, endpoint_id)
    conn.execute(deliveries.delete().where(deliveries.c.endpoint_id == endpoint_id))
    conn.execute(endpoints.delete().where(endpoints.c.id == endpoint_id))
    return _endpoint(row)


def rotate_secret(
    conn: Connection,
    reseller_id: str,
    endpoint_id: str,
    overlap: timedelta | None = None,
    *,
    now: datetime | None = None,
) -> tuple[Endpoint, str]:
    """A new secret signs from now on; the current one keeps signing for ``overlap``."""
    overlap = DEFAULT_OVERLAP if overlap is None or overlap <= timedelta(0) else overlap
    if overlap > MAX_OVERLAP:
        raise InvalidEndpoint("overlap_seconds must be at most 7 days", field="overlap_seconds")
    row = _owned(conn, reseller_id, endpoint_id)
    moment = now or datetime.now(UTC)
    secret = new_secret()
    conn.execute(
        endpoints.update()
        .where(endpoints.c.id == endpoint_id)
        .values(secret=secret, previous_secret=row.secret, previous_expires_at=moment + overlap)
    )
    rotated = _owned(conn, reseller_id, endpoint_id)
    return _endpoint(rotated), secret
