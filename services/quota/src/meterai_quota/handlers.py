"""Quota commands that take more than one rule: buying quota and confirming its payment.

Each function runs inside the caller's transaction (it never commits) and is what every front
end calls, so the gRPC servicer only translates.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from meterai.events.v1 import events_pb2
from meterai_common import audit
from meterai_common.outbox import enqueue_event

from . import orders as order_book
from .domain.model import Order, OrderState
from .domain.payments import PaymentProvider

__all__ = ["confirm_and_announce", "purchase_quota"]


def confirm_and_announce(conn: Connection, order_id: str, reference: str, amount_idr: int) -> Order:
    """Confirm a payment and, the one time it credits quota, queue ``QuotaCredited`` in the
    same transaction (a redelivered confirmation announces nothing)."""
    before = order_book.get_order(conn, order_id, for_update=True)
    order = order_book.confirm_payment(conn, order_id, reference, amount_idr)
    if before.state is not OrderState.PAID and order.state is OrderState.PAID:
        event = events_pb2.QuotaCredited(
            order_id=order.id,
            reseller_id=order.reseller_id,
            quantity=order.quantity,
            payment_reference=reference,
        )
        enqueue_event(
            conn, "QuotaCredited", event.SerializeToString(), order.paid_at or order.created_at
        )
        audit.record(
            conn,
            audit.AuditEvent(
                kind=audit.EventKind.PAYMENT_CONFIRMED,
                subject=order.id,
                details={
                    "order_id": order.id,
                    "reseller_id": order.reseller_id,
                    "quantity": order.quantity,
                    "amount_idr": amount_idr,
                    "payment_reference": reference,
                },
            ),
        )
    return order


def purchase_quota(
    conn: Connection,
    payments: PaymentProvider,
    reseller_id: str,
    quantity: int,
    idempotency_key: str,
    *,
    before_commit: Callable[[], None] = lambda: None,
) -> Order:
    """Place (or replay) an order and hand a new one to the payment provider.

    :param before_commit: called last, inside the transaction; raising there (the caller's
        deadline passed) leaves nothing written.
    """
    order = order_book.purchase(conn, reseller_id, quantity, idempotency_key)
    if order.state is OrderState.AWAITING_PAYMENT:
        order = payments.order_placed(conn, order)
    before_commit()
    return order
