"""QuotaService servicer: protobuf in, ledger calls in one transaction, protobuf out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
from sqlalchemy import Engine

from meterai.events.v1 import events_pb2
from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai_common import audit
from meterai_common.db import reading, run_in_transaction
from meterai_common.grpc_errors import RequestError, status_from_errors
from meterai_common.outbox import enqueue_event
from meterai_common.proto_time import timestamp

from . import orders as order_book
from .domain.errors import PermissionDenied
from .domain.model import Order, OrderState, Principal, Role
from .ledger import balance, list_entries

__all__ = ["QuotaServicer"]

_STATES = {state: getattr(quota_pb2, f"ORDER_STATE_{state.value}") for state in OrderState}


def order_to_proto(order: Order) -> quota_pb2.Order:
    return quota_pb2.Order(
        order_id=order.id,
        quantity=order.quantity,
        unit_price_idr=order.unit_price_idr,
        total_idr=order.total_idr,
        state=_STATES[order.state],
        payment_reference=order.payment_reference or "",
        created_at=timestamp(order.created_at),
        paid_at=timestamp(order.paid_at),
        expires_at=timestamp(order.expires_at),
    )


def confirm_and_announce(conn: Any, order_id: str, reference: str, amount_idr: int) -> Order:
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


class QuotaServicer(quota_pb2_grpc.QuotaServiceServicer):
    """:param confirm_at_once: the dev payment provider: an order is paid as soon as placed."""

    def __init__(
        self,
        engine: Engine,
        authenticate: Callable[[grpc.ServicerContext], Principal],
        *,
        confirm_at_once: bool,
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = engine
        self._auth = authenticate
        self._confirm_at_once = confirm_at_once
        self._committed = committed

    def _reseller(self, context: grpc.ServicerContext) -> Principal:
        principal = self._auth(context)
        if principal.role is not Role.RESELLER or principal.reseller_id is None:
            raise PermissionDenied("this call needs a reseller API key")
        return principal

    def _read(self) -> Any:
        return reading(self._db)

    def PurchaseQuota(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            principal = self._reseller(context)
            assert principal.reseller_id is not None
            reseller_id = principal.reseller_id

            def work(conn: Any) -> Order:
                order = order_book.purchase(
                    conn, reseller_id, request.quantity, request.idempotency_key
                )
                if self._confirm_at_once and order.state is OrderState.AWAITING_PAYMENT:
                    order = confirm_and_announce(
                        conn, order.id, f"dev-{uuid.uuid4().hex}", order.total_idr
                    )
                return order

            order = run_in_transaction(self._db, work)
            self._committed()
            return order_to_proto(order)

    def ConfirmPayment(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            principal = self._auth(context)
            if principal.role is not Role.OPERATOR:
                raise PermissionDenied("confirming payments needs an operator API key")
            order = run_in_transaction(
                self._db,
                lambda conn: confirm_and_announce(
                    conn, request.order_id, request.payment_reference, request.amount_idr
                ),
            )
            self._committed()
            return order_to_proto(order)

    def CancelOrder(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            principal = self._reseller(context)

            def work(conn: Any) -> Order:
                order = order_book.get_order(conn, request.order_id, for_update=True)
                principal.require_access(order.reseller_id)
                return order_book.cancel_order(conn, request.order_id)

            return order_to_proto(run_in_transaction(self._db, work))

    def GetOrder(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            principal = self._auth(context)
            with self._read() as conn:
                order = order_book.get_order(conn, request.order_id)
            principal.require_access(order.reseller_id)
            return order_to_proto(order)

    def GetBalance(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            principal = self._reseller(context)
            assert principal.quota_owner_id is not None
            with self._read() as conn:
                current = balance(conn, principal.quota_owner_id)
            return quota_pb2.Balance(
                available=current.available,
                held=current.held,
                consumed=current.consumed,
                purchased=current.purchased,
                refunded=current.refunded,
            )

    def ListOrders(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            principal = self._reseller(context)
            assert principal.reseller_id is not None
            if request.page_size < 0:
                raise RequestError("INVALID_ARGUMENT", "page_size must not be negative")
            with self._read() as conn:
                page = order_book.list_orders(
                    conn,
                    principal.reseller_id,
                    page_size=request.page_size or None,
                    page_token=request.page_token or None,
                )
            return quota_pb2.ListOrdersResponse(
                orders=[order_to_proto(order) for order in page.items],
                next_page_token=page.next_page_token or "",
            )

    def ListLedgerEntries(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            principal = self._reseller(context)
            assert principal.quota_owner_id is not None
            if request.page_size < 0:
                raise RequestError("INVALID_ARGUMENT", "page_size must not be negative")
            with self._read() as conn:
                page = list_entries(
                    conn,
                    principal.quota_owner_id,
                    page_size=request.page_size or None,
                    page_token=request.page_token or None,
                )
            return quota_pb2.ListLedgerEntriesResponse(
                entries=[
                    quota_pb2.LedgerEntry(
                        entry_id=str(entry.id),
                        transaction_id=entry.transaction_id,
                        account=entry.account,
                        amount=entry.amount,
                        kind=entry.transaction_kind,
                        reference=entry.job_id or entry.order_id or "",
                        created_at=timestamp(entry.created_at),
                    )
                    for entry in page.items
                ],
                next_page_token=page.next_page_token or "",
            )
