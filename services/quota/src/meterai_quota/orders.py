"""Purchasing quota: orders, payment confirmations, cancellation and expiry.

Idempotency is enforced by the database, not by a read-then-write: ``UNIQUE(reseller_id,
idempotency_key)`` arbitrates concurrent purchases with one key and ``UNIQUE(payment_reference)``
makes a payment credit at most one order. Confirmation locks the order row, so concurrent
redeliveries of one payment serialise and all but the first see an already-paid order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from .adapters.statements import insert_or_ignore
from .adapters.tables import orders
from .domain.errors import InvalidArgument, OrderNotFound, PaymentReferenceReused
from .domain.ledger_rules import TransactionKind, purchase_postings
from .domain.model import Order, OrderState, Page
from .domain.money import UNIT_PRICE_IDR, order_total, validate_quantity
from .domain.orders import (
    DEFAULT_PAYMENT_WINDOW,
    check_cancellable,
    check_payable,
    check_same_purchase,
    is_redelivery,
    validate_key,
)
from .domain.pagination import clamp_page_size, decode_token, encode_token
from .ledger import post
from .resellers import quota_owner_of

__all__ = [
    "cancel_order",
    "confirm_payment",
    "expire_orders",
    "get_order",
    "list_orders",
    "purchase",
]


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _order(row: sa.Row[tuple[object, ...]]) -> Order:
    return Order(
        id=row.id,
        reseller_id=row.reseller_id,
        owner_id=row.owner_id,
        quantity=int(row.quantity),
        unit_price_idr=int(row.unit_price_idr),
        total_idr=int(row.total_idr),
        state=OrderState(row.state),
        idempotency_key=row.idempotency_key,
        created_at=row.created_at,
        expires_at=row.expires_at,
        payment_reference=row.payment_reference,
        paid_at=row.paid_at,
        closed_at=row.closed_at,
    )


def get_order(conn: Connection, order_id: str, *, for_update: bool = False) -> Order:
    query = sa.select(orders).where(orders.c.id == order_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    return _order(row)


def purchase(
    conn: Connection,
    reseller_id: str,
    quantity: int,
    idempotency_key: str,
    *,
    now: datetime | None = None,
    payment_window: timedelta = DEFAULT_PAYMENT_WINDOW,
) -> Order:
    """Open an order for ``quantity`` stamps at Rp 10.000 each, awaiting payment.

    Replaying the same ``idempotency_key`` with the same quantity returns the original order;
    with another quantity it raises :class:`~meterai_quota.domain.errors.IdempotencyConflict`.

    :param payment_window: how long the order accepts a payment before it expires.
    """
    validate_quantity(quantity)
    validate_key("idempotency_key", idempotency_key)
    if payment_window <= timedelta(0):
        raise InvalidArgument("payment window must be positive")
    owner_id = quota_owner_of(conn, reseller_id)
    created_at = _now(now)
    inserted = conn.execute(
        insert_or_ignore(conn, orders)
        .values(
            id=str(uuid.uuid4()),
            reseller_id=reseller_id,
            owner_id=owner_id,
            quantity=quantity,
            unit_price_idr=UNIT_PRICE_IDR,
            total_idr=order_total(quantity),
            state=OrderState.AWAITING_PAYMENT.value,
            idempotency_key=idempotency_key,
            created_at=created_at,
            expires_at=created_at + payment_window,
        )
        .returning(orders.c.id)
    ).first()
    row = conn.execute(
        sa.select(orders).where(
            orders.c.reseller_id == reseller_id, orders.c.idempotency_key == idempotency_key
        )
    ).one()
    existing = _order(row)
    return existing if inserted is not None else check_same_purchase(existing, quantity)


def confirm_payment(
    conn: Connection,
    order_id: str,
    payment_reference: str,
    amount_idr: int,
    *,
    now: datetime | None = None,
) -> Order:
    """Apply a payment to an order and credit its quantity, exactly once per payment reference.

    A redelivered confirmation (same order, same reference) returns the paid order without
    crediting again. A wrong amount, a cancelled or expired order, or a reference already used
    on another order raise, and nothing is credited.
    """
    validate_key("payment_reference", payment_reference)
    if isinstance(amount_idr, bool) or not isinstance(amount_idr, int):
        raise InvalidArgument("amount must be whole rupiah")
    moment = _now(now)
    order = get_order(conn, order_id, for_update=True)
    if is_redelivery(order, payment_reference):
        return order
    check_payable(order, amount_idr, moment)
    used_by = conn.scalar(
        sa.select(orders.c.id).where(orders.c.payment_reference == payment_reference)
    )
    if used_by is not None:
        raise PaymentReferenceReused(f"payment {payment_reference} already paid order {used_by}")
    try:
        conn.execute(
            orders.update()
            .where(orders.c.id == order_id)
            .values(
                state=OrderState.PAID.value, payment_reference=payment_reference, paid_at=moment
            )
        )
    except IntegrityError as error:
        raise PaymentReferenceReused(
            f"payment {payment_reference} was applied to another order concurrently"
        ) from error
    post(
        conn,
        owner_id=order.owner_id,
        kind=TransactionKind.PURCHASE,
        postings=purchase_postings(order.quantity),
        now=moment,
        order_id=order.id,
        memo=f"payment {payment_reference}",
    )
    return get_order(conn, order_id)


def cancel_order(conn: Connection, order_id: str, *, now: datetime | None = None) -> Order:
    """Cancel an unpaid order; cancelling twice is harmless, cancelling a paid one is an error."""
    order = get_order(conn, order_id, for_update=True)
    if not check_cancellable(order):
        return order
    conn.execute(
        orders.update()
        .where(orders.c.id == order_id)
        .values(state=OrderState.CANCELLED.value, closed_at=_now(now))
    )
    return get_order(conn, order_id)


def expire_orders(conn: Connection, now: datetime) -> int:
    """Move every unpaid order whose payment window has closed to EXPIRED; return how many."""
    return int(
        conn.execute(
            orders.update()
            .where(orders.c.state == OrderState.AWAITING_PAYMENT.value, orders.c.expires_at <= now)
            .values(state=OrderState.EXPIRED.value, closed_at=now)
        ).rowcount
    )


_ORDERS = "orders"


def list_orders(
    conn: Connection,
    reseller_id: str,
    *,
    page_size: int | None = None,
    page_token: str | None = None,
) -> Page[Order]:
    """Orders placed by ``reseller_id``, newest first.

    :param page_size: default 20, capped at 100.
    :param page_token: ``next_page_token`` of the previous page.
    """
    size = clamp_page_size(page_size)
    query = (
        sa.select(orders)
        .where(orders.c.reseller_id == reseller_id)
        .order_by(orders.c.created_at.desc(), orders.c.id.desc())
        .limit(size + 1)
    )
    if page_token:
        stamp, last_id = decode_token(_ORDERS, page_token, (str, str))
        try:
            created_at = datetime.fromisoformat(stamp)
        except ValueError as error:
            raise InvalidArgument("page token is not valid") from error
        query = query.where(
            sa.or_(
                orders.c.created_at < created_at,
                sa.and_(orders.c.created_at == created_at, orders.c.id < last_id),
            )
        )
    rows = conn.execute(query).all()
    items = tuple(_order(row) for row in rows[:size])
    token = None
    if len(rows) > size:
        last = items[-1]
        token = encode_token(_ORDERS, [last.created_at.isoformat(), last.id])
    return Page(items, token)
