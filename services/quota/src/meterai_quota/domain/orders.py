"""Order life-cycle rules: which payment may be applied to which order.

AWAITING_PAYMENT -> PAID (once, by one payment reference), -> CANCELLED (by the buyer) or
-> EXPIRED (after the payment window). Only PAID credits quota.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .errors import (
    AmountMismatch,
    IdempotencyConflict,
    InvalidArgument,
    OrderAlreadyPaid,
    OrderCancelled,
    OrderExpired,
)
from .model import Order, OrderState

__all__ = [
    "DEFAULT_PAYMENT_WINDOW",
    "check_cancellable",
    "check_payable",
    "check_same_purchase",
    "is_redelivery",
    "validate_key",
]

DEFAULT_PAYMENT_WINDOW = timedelta(hours=24)
"""How long an order waits for its payment before it expires."""

_MAX_KEY = 128


def validate_key(name: str, value: str) -> str:
    """Idempotency keys and payment references: non-empty, printable, bounded."""
    if not isinstance(value, str) or not value or len(value) > _MAX_KEY or not value.isprintable():
        raise InvalidArgument(f"{name} must be 1-{_MAX_KEY} printable characters")
    return value


def check_same_purchase(existing: Order, quantity: int) -> Order:
    """A replayed purchase must ask for the same thing as the original."""
    if existing.quantity != quantity:
        raise IdempotencyConflict(
            f"idempotency key already used for an order of {existing.quantity} stamps"
        )
    return existing


def is_redelivery(order: Order, payment_reference: str) -> bool:
    """The payment gateway re-sent a confirmation that was already applied."""
    return order.state is OrderState.PAID and order.payment_reference == payment_reference


def check_payable(order: Order, amount_idr: int, now: datetime) -> None:
    """Raise unless ``amount_idr`` may settle ``order`` at ``now``."""
    if order.state is OrderState.PAID:
        raise OrderAlreadyPaid(f"order {order.id} was already paid by another payment")
    if order.state is OrderState.CANCELLED:
        raise OrderCancelled(f"order {order.id} was cancelled; refund the payment")
    if order.state is OrderState.EXPIRED or now >= order.expires_at:
        raise OrderExpired(f"order {order.id} expired at {order.expires_at.isoformat()}")
    if amount_idr != order.total_idr:
        raise AmountMismatch(
            f"order {order.id} costs Rp {order.total_idr:,}, payment was Rp {amount_idr:,}"
        )


def check_cancellable(order: Order) -> bool:
    """Return ``True`` if the order must move to CANCELLED, ``False`` if it already is."""
    if order.state is OrderState.CANCELLED:
        return False
    if order.state is OrderState.PAID:
        raise OrderAlreadyPaid(f"order {order.id} is paid and cannot be cancelled")
    if order.state is OrderState.EXPIRED:
        raise OrderExpired(f"order {order.id} already expired")
    return True
