"""Value objects of the quota service: who acts, what they bought, what they hold.

All are frozen dataclasses so that a value handed to the API layer cannot drift from the rows it
was read from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from .errors import PermissionDenied

__all__ = [
    "ApiKey",
    "Balance",
    "LedgerEntry",
    "Order",
    "OrderState",
    "Page",
    "Principal",
    "Reseller",
    "Role",
    "SerialInfo",
    "SerialStatus",
]

T = TypeVar("T")


class Role(StrEnum):
    RESELLER = "reseller"
    """Acts for one reseller (and spends its root's quota)."""
    OPERATOR = "operator"
    """Platform staff: not a reseller, may act for any reseller."""


class OrderState(StrEnum):
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    PAID = "PAID"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class SerialStatus(StrEnum):
    HELD = "HELD"
    """Reserved by a job that has not finished; the stamp is not valid yet."""
    ISSUED = "ISSUED"
    """The stamp was applied and paid for."""
    VOID = "VOID"
    """The job failed; the serial is dead and will never be reissued."""
    UNKNOWN = "UNKNOWN"
    """Well formed but never allocated (forged or mistyped beyond the check character)."""


@dataclass(frozen=True, slots=True)
class Reseller:
    id: str
    name: str
    parent_id: str | None
    """The account this sub-account belongs to, ``None`` for a top-level reseller."""
    root_id: str
    """The top-level reseller whose quota this reseller spends (itself if top-level)."""
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, derived from its API key, never from the request payload."""

    reseller_id: str | None
    """The reseller acting; ``None`` for operators, who are not resellers."""
    quota_owner_id: str | None
    """The root reseller whose ledger is debited; ``None`` for operators."""
    role: Role

    def require_access(self, reseller_id: str) -> None:
        """Raise :class:`PermissionDenied` unless this principal may act for ``reseller_id``.

        Operators act for anyone; a reseller only for itself.
        """
        if self.role is Role.OPERATOR or self.reseller_id == reseller_id:
            return
        raise PermissionDenied("this API key may not act for that reseller")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What the platform knows of an API key: everything but the key itself."""

    key_id: str
    """Public handle of the key (the first 16 hex digits of its SHA-256): safe to show, log
    and pass to revoke or rotate; its holder can compute it from the key."""
    prefix: str | None
    """The key's first characters, so its holder recognises it; ``None`` for keys created
    before prefixes were kept."""
    role: Role
    reseller_id: str | None
    created_at: datetime
    expires_at: datetime | None
    """Set by a rotation: the key works until then. ``None``: no end."""
    revoked_at: datetime | None

    def active_at(self, now: datetime) -> bool:
        """Whether the key authenticates at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    reseller_id: str
    """Who placed the order (a sub-account keeps its own history)."""
    owner_id: str
    """Whose quota is credited when the order is paid."""
    quantity: int
    unit_price_idr: int
    total_idr: int
    state: OrderState
    idempotency_key: str
    created_at: datetime
    expires_at: datetime
    """Payments arriving after this instant are refused; the order becomes EXPIRED."""
    payment_reference: str | None
    paid_at: datetime | None
    closed_at: datetime | None
    """When the order was cancelled or expired."""


@dataclass(frozen=True, slots=True)
class Balance:
    """Quota of one owner, in stamps. ``purchased == available + held + consumed`` always."""

    available: int
    held: int
    consumed: int
    purchased: int
    refunded: int
    """Units returned to ``available`` by released holds (failed stamps); informational, already
    included in ``available``."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    transaction_id: str
    transaction_kind: str
    account: str
    amount: int
    order_id: str | None
    job_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SerialInfo:
    """What anyone may learn about a serial: no personal data, only the stamp's facts."""

    serial: str
    status: SerialStatus
    stamped_at: datetime | None = None
    document_digest: str | None = None
    document_type: str | None = None
    reseller_id: str | None = None
    reseller_name: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_page_token: str | None
    """Pass back to get the next page; ``None`` on the last page."""
