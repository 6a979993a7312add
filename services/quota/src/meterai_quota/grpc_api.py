"""QuotaService servicer: protobuf in, ledger calls in one transaction, protobuf out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from sqlalchemy import Engine

from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai_common.db import reading, run_in_transaction
from meterai_common.deadlines import ensure_call_alive
from meterai_common.grpc_errors import RequestError, status_from_errors
from meterai_common.proto_time import timestamp
from meterai_common.request_ids import require_uuid

from . import api_keys
from . import orders as order_book
from .domain.errors import OrderNotFound, PermissionDenied
from .domain.model import ApiKey, Order, OrderState, Principal, Role
from .domain.payments import PaymentProvider
from .handlers import confirm_and_announce, purchase_quota
from .ledger import balance, list_entries

__all__ = ["QuotaServicer"]

log = logging.getLogger(__name__)

_STATES = {state: getattr(quota_pb2, f"ORDER_STATE_{state.value}") for state in OrderState}
_ROLES = {
    Role.RESELLER: quota_pb2.API_KEY_ROLE_RESELLER,
    Role.OPERATOR: quota_pb2.API_KEY_ROLE_OPERATOR,
}
_ROLE_OF = {proto: role for role, proto in _ROLES.items()}


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


def api_key_to_proto(key: ApiKey, now: datetime) -> quota_pb2.ApiKey:
    return quota_pb2.ApiKey(
        key_id=key.key_id,
        prefix=key.prefix or "",
        role=_ROLES[key.role],
        reseller_id=key.reseller_id or "",
        created_at=timestamp(key.created_at),
        expires_at=timestamp(key.expires_at),
        revoked_at=timestamp(key.revoked_at),
        active=key.active_at(now),
    )


def _require_own(principal: Principal, order: Order) -> None:
    """Another reseller's order is not found, in the same words as one that does not exist:
    a refusal that differs would tell a caller which order ids exist."""
    try:
        principal.require_access(order.reseller_id)
    except PermissionDenied:
        raise OrderNotFound(f"order {order.id} does not exist") from None


class QuotaServicer(quota_pb2_grpc.QuotaServiceServicer):
    """:param payments: decides when a placed order is paid.
    :param before_commit: called right before a purchase's deadline check (tests slow a call
        down with it to prove the check)."""

    def __init__(
        self,
        engine: Engine,
        authenticate: Callable[[grpc.ServicerContext], Principal],
        *,
        payments: PaymentProvider,
        committed: Callable[[], None] = lambda: None,
        before_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = engine
        self._auth = authenticate
        self._payments = payments
        self._committed = committed
        self._before_commit = before_commit

    def _operator(self, context: grpc.ServicerContext, what: str) -> Principal:
        principal = self._auth(context)
        if principal.role is not Role.OPERATOR:
            raise PermissionDenied(f"{what} needs an operator API key")
        return principal

    def _reseller(self, context: grpc.ServicerContext) -> Principal:
        principal = self._auth(context)
        if principal.role is not Role.RESELLER or principal.reseller_id is None:
            raise PermissionDenied("this call needs a reseller API key")
        return principal

    def _read(self) -> Any:
        return reading(self._db)

    def PurchaseQuota(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            principal = self._reseller(context)
            assert principal.reseller_id is not None
            reseller_id = principal.reseller_id

            def before_commit() -> None:
                self._before_commit()
                ensure_call_alive(context)

            def work(conn: Any) -> Order:
                return purchase_quota(
                    conn,
                    self._payments,
                    reseller_id,
                    request.quantity,
                    request.idempotency_key,
                    before_commit=before_commit,
                )

            order = run_in_transaction(self._db, work)
            self._committed()
            return order_to_proto(order)

    def ConfirmPayment(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            self._operator(context, "confirming payments")
            require_uuid(request.order_id, "order_id")
            order = run_in_transaction(
                self._db,
                lambda conn: confirm_and_announce(
                    conn, request.order_id, request.payment_reference, request.amount_idr
                ),
            )
            self._committed()
            return order_to_proto(order)

    def CancelOrder(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            principal = self._reseller(context)
            require_uuid(request.order_id, "order_id")

            def work(conn: Any) -> Order:
                order = order_book.get_order(conn, request.order_id, for_update=True)
                _require_own(principal, order)
                return order_book.cancel_order(conn, request.order_id)

            return order_to_proto(run_in_transaction(self._db, work))

    def GetOrder(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            principal = self._auth(context)
            require_uuid(request.order_id, "order_id")
            with self._read() as conn:
                order = order_book.get_order(conn, request.order_id)
            _require_own(principal, order)
            return order_to_proto(order)

    def GetBalance(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
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
        with status_from_errors(context, request):
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
        with status_from_errors(context, request):
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

    def ListApiKeys(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            self._operator(context, "listing API keys")
            now = datetime.now(UTC)
            with self._read() as conn:
                page = api_keys.list_api_keys(
                    conn,
                    reseller_id=request.reseller_id or None,
                    include_inactive=request.include_inactive,
                    page_size=request.page_size or None,
                    page_token=request.page_token or None,
                    now=now,
                )
            return quota_pb2.ListApiKeysResponse(
                keys=[api_key_to_proto(key, now) for key in page.items],
                next_page_token=page.next_page_token or "",
            )

    def CreateApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            self._operator(context, "creating API keys")
            role = _ROLE_OF.get(request.role or quota_pb2.API_KEY_ROLE_RESELLER)
            if role is None:
                raise RequestError("INVALID_ARGUMENT", f"unknown role {request.role}")
            key, plaintext = run_in_transaction(
                self._db,
                lambda conn: api_keys.create_api_key(conn, request.reseller_id or None, role),
            )
            log.info("API key %s created (%s %s)", key.key_id, key.role, key.reseller_id or "")
            return quota_pb2.CreatedApiKey(
                key=api_key_to_proto(key, datetime.now(UTC)), api_key=plaintext
            )

    def RevokeApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            self._operator(context, "revoking API keys")
            key = run_in_transaction(
                self._db, lambda conn: api_keys.revoke_key(conn, request.key_id)
            )
            log.info("API key %s revoked", key.key_id)
            return api_key_to_proto(key, datetime.now(UTC))

    def RotateApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            self._operator(context, "rotating API keys")
            if request.grace_period_seconds < 0:
                raise RequestError("INVALID_ARGUMENT", "grace_period_seconds must not be negative")
            grace = timedelta(seconds=min(request.grace_period_seconds, 10**9))
            old, new, plaintext = run_in_transaction(
                self._db, lambda conn: api_keys.rotate_api_key(conn, request.key_id, grace)
            )
            log.info(
                "API key %s rotated to %s, old key ends %s", old.key_id, new.key_id, old.expires_at
            )
            now = datetime.now(UTC)
            return quota_pb2.RotatedApiKey(
                retiring=api_key_to_proto(old, now),
                key=api_key_to_proto(new, now),
                api_key=plaintext,
            )
