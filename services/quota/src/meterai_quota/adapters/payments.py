"""The payment providers: ``gateway`` (the payment gateway confirms) and ``dev`` (paid at once).

Which one runs is decided in one place, :func:`choose_payment_provider`: the embedded platform
(``meterai up``) defaults to ``dev``; a quota service started on its own has no default and
refuses to start until ``METERAI_PAYMENT_PROVIDER`` names one, so a deployment that forgets the
variable sells nothing instead of giving quota away.
"""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Connection

from meterai_common.config import ConfigError

from ..domain.model import Order
from ..domain.payments import PaymentProvider
from ..handlers import confirm_and_announce

__all__ = [
    "PAYMENT_PROVIDERS",
    "DevPaymentProvider",
    "GatewayPaymentProvider",
    "choose_payment_provider",
]


class GatewayPaymentProvider(PaymentProvider):
    """Orders wait for ConfirmPayment from the payment gateway or an operator."""

    name = "gateway"
    description = "orders are paid when the payment gateway (or an operator) confirms them"

    def order_placed(self, conn: Connection, order: Order) -> Order:
        return order


class DevPaymentProvider(PaymentProvider):
    """Every order is paid the moment it is placed, with a made-up ``dev-`` reference.

    For trials and tests only: it hands out quota without collecting money.
    """

    name = "dev"
    description = "DEV: every order is paid at once and no money is collected (trials only)"

    def order_placed(self, conn: Connection, order: Order) -> Order:
        return confirm_and_announce(conn, order.id, f"dev-{uuid.uuid4().hex}", order.total_idr)


PAYMENT_PROVIDERS: dict[str, type[PaymentProvider]] = {
    provider.name: provider for provider in (GatewayPaymentProvider, DevPaymentProvider)
}


def choose_payment_provider(named: str | None, *, default: str | None) -> PaymentProvider:
    """The provider ``named`` (``METERAI_PAYMENT_PROVIDER``), else ``default``.

    :param default: ``"dev"`` for the embedded platform; ``None`` for a quota service run on
        its own, which then refuses to start without a provider named.
    :raises ConfigError: no provider named and no default, or an unknown name.
    """
    name = named or default
    if name is None:
        raise ConfigError(
            "METERAI_PAYMENT_PROVIDER is not set: a quota service run on its own needs it. Set "
            "METERAI_PAYMENT_PROVIDER=gateway (orders are paid when the payment gateway calls "
            "ConfirmPayment) or, for a trial that gives quota away, METERAI_PAYMENT_PROVIDER=dev"
        )
    if name not in PAYMENT_PROVIDERS:
        raise ConfigError(
            f"METERAI_PAYMENT_PROVIDER must be one of {', '.join(sorted(PAYMENT_PROVIDERS))}, "
            f"not {name!r}"
        )
    return PAYMENT_PROVIDERS[name]()
