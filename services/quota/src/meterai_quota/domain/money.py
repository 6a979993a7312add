"""Prices and quantities.

Amounts are whole rupiah in ``int``: the rupiah has no minor unit in practice and integers make
"the amount paid equals the total" an exact comparison.
"""

from __future__ import annotations

from .errors import InvalidArgument

__all__ = ["MAX_ORDER_QUANTITY", "UNIT_PRICE_IDR", "order_total", "validate_quantity"]

UNIT_PRICE_IDR = 10_000
"""Price of one e-meterai in rupiah (Rp 10.000, the statutory stamp duty)."""

MAX_ORDER_QUANTITY = 100_000
"""Largest order accepted in one purchase; bigger buys are split, which keeps one payment
error from crediting an absurd amount."""


def validate_quantity(quantity: int) -> int:
    """Return ``quantity`` if it is a whole number of stamps within order limits."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidArgument("quantity must be a whole number of stamps")
    if not 1 <= quantity <= MAX_ORDER_QUANTITY:
        raise InvalidArgument(f"quantity must be between 1 and {MAX_ORDER_QUANTITY}")
    return quantity


def order_total(quantity: int, unit_price_idr: int = UNIT_PRICE_IDR) -> int:
    """Total to pay, in rupiah, for ``quantity`` stamps."""
    return validate_quantity(quantity) * unit_price_idr
