"""The payment provider port: what happens to an order once it is placed.

Purchasing quota is one rule whatever collects the money; the provider decides only when an
order awaiting payment becomes paid. The gateway provider leaves it to the payment gateway (or
an operator) calling ConfirmPayment; the dev provider pays it at once, which is what a trial on
one machine wants and what must never run by accident where money is real. Adapters live in
:mod:`meterai_quota.adapters.payments`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from .model import Order

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["PaymentProvider"]


class PaymentProvider(ABC):
    """How orders get paid: one instance per quota service."""

    name: str
    """What ``METERAI_PAYMENT_PROVIDER`` names this provider; logged at start-up."""
    description: str
    """One line for the start-up log: what this provider does with an order."""

    @abstractmethod
    def order_placed(self, conn: Connection, order: Order) -> Order:
        """Called in the purchase's transaction for an order awaiting payment; returns the
        order as the provider leaves it (still awaiting payment, or paid)."""
