"""``WebhookService``: translates requests to :mod:`.endpoints` and :mod:`.deliveries` calls.

The reseller is the caller's credential's (``authenticate`` is the quota service's), never a
request field; each error maps to its status through ``status_from_errors``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import grpc
from sqlalchemy import Engine

from meterai.webhooks.v1 import webhooks_pb2, webhooks_pb2_grpc
from meterai_common.db import reading, run_in_transaction
from meterai_common.grpc_errors import RequestError, status_from_errors
from meterai_common.proto_time import timestamp

from . import deliveries as log
from . import endpoints as book
from .config import WebhookSettings

__all__ = ["WebhookServicer"]

_STATES = {
    webhooks_pb2.PENDING: log.PENDING,
    webhooks_pb2.DELIVERED: log.DELIVERED,
    webhooks_pb2.DEAD: log.DEAD,
}
_STATE_NUMBERS = {name: number for number, name in _STATES.items()}
MAX_PAGE = 500


class _Caller(Protocol):
    reseller_id: str | None


class WebhookServicer(webhooks_pb2_grpc.WebhookServiceServicer):
    def __init__(
        self,
        db: Engine,
        authenticate: Callable[[grpc.ServicerContext], _Caller],
        settings: WebhookSettings,
        *,
        replayed: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._auth = authenticate
        self._settings = settings
        self._replayed = replayed

    def _reseller(self, context: grpc.ServicerContext) -> str:
        caller = self._auth(context)
        if caller.reseller_id is None:
            raise RequestError(
                "PERMISSION_DENIED",
                "webhooks belong to a reseller: call with a reseller API key",
                reason="RESELLER_KEY_REQUIRED",
            )
        return caller.reseller_id

    def CreateEndpoint(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            reseller = self._reseller(context)
            endpoint, secret = run_in_transaction(
                self._db,
                lambda conn: book.create_endpoint(
                    conn,
                    reseller,
                    request.url,
                    request.description,
                    allow_http=self._settings.allow_http,
                ),
            )
            return webhooks_pb2.EndpointWithSecret(endpoint=_endpoint(endpoint), secret=secret)

    def ListEndpoints(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            reseller = self._reseller(context)
            with reading(self._db) as conn:
                found = book.endpoints_of(conn, reseller)
            return webhooks_pb2.ListEndpointsResponse(endpoints=[_endpoint(e) for e in found])

    def DeleteEndpoint(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            reseller = self._reseller(context)
            gone = run_in_transaction(
                self._db, lambda conn: book.delete_endpoint(conn, reseller, request.endpoint_id)
            )
            return _endpoint(gone)

    def RotateEndpointSecret(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            reseller = self._reseller(context)
            if request.overlap_seconds < 0:
                raise RequestError(
                    "INVALID_ARGUMENT",
                    "overlap_seconds must not be negative",
                    reason="INVALID_OVERLAP",
                )
            overlap = (
                timedelta(seconds=request.overlap_seconds) if request.overlap_seconds else None
            )
            endpoint, secret = run_in_transaction(
                self._db,
                lambda conn: book.rotate_secret(conn, reseller, request.endpoint_id, overlap),
            )
            return webhooks_pb2.EndpointWithSecret(endpoint=_endpoint(endpoint), secret=secret)

    def ListDeliveries(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            reseller = self._reseller(context)
            if not 0 <= request.page_size <= MAX_PAGE:
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"page_size must be between 0 and {MAX_PAGE}",
                    reason="INVALID_PAGE_SIZE",
                )
            with reading(self._db) as conn:
                found = log.deliveries_of(
                    conn,
                    reseller,
                    endpoint_id=request.endpoint_id or None,
                    state=_STATES.get(request.state),
                    limit=request.page_size or 50,
                )
            return webhooks_pb2.ListDeliveriesResponse(deliveries=[_delivery(d) for d in found])

    def ReplayDeliveries(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            reseller = self._reseller(context)
            count = run_in_transaction(
                self._db,
                lambda conn: log.replay(
                    conn,
                    reseller,
                    datetime.now(UTC),
                    delivery_ids=list(request.delivery_ids),
                    endpoint_id=request.endpoint_id or None,
                ),
            )
            self._replayed()
            return webhooks_pb2.ReplayDeliveriesResponse(replayed=count)


def _endpoint(endpoint: book.Endpoint) -> Any:
    return webhooks_pb2.Endpoint(
        endpoint_id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        created_at=timestamp(endpoint.created_at),
        previous_secret_expires_at=timestamp(endpoint.previous_expires_at),
    )


def _delivery(delivery: log.Delivery) -> Any:
    return webhooks_pb2.Delivery(
        delivery_id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        message_id=delivery.message_id,
        event_type=delivery.event_type,
        subject=delivery.subject,
        state=_STATE_NUMBERS.get(delivery.state, webhooks_pb2.DELIVERY_STATE_UNSPECIFIED),
        attempts=delivery.attempts,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        created_at=timestamp(delivery.created_at),
        next_attempt_at=timestamp(delivery.next_attempt_at)
        if delivery.state == log.PENDING
        else None,
        delivered_at=timestamp(delivery.delivered_at),
    )
