"""meterai quota: resellers and API keys, orders and payments, the double-entry quota ledger,
the stamping protocol (hold / commit / release) and serial numbers.

Every function takes a SQLAlchemy :class:`~sqlalchemy.engine.Connection` that is already inside
the caller's transaction and never commits, so a caller can make a quota hold, its own job row
and an outbox message durable together (``meterai_common.db.run_in_transaction``). Errors all
derive from :class:`QuotaError` and carry the gRPC status ``code`` they map to.
"""

from __future__ import annotations

from .api_keys import (
    authenticate,
    create_api_key,
    get_api_key,
    issue_api_key,
    key_id_of,
    list_api_keys,
    revoke_api_key,
    revoke_key,
    rotate_api_key,
)
from .client_certificates import (
    authenticate_certificate,
    certificate_fingerprint,
    register_certificate,
    revoke_certificate,
)
from .domain.errors import (
    AlreadyCommitted,
    AmountMismatch,
    ApiKeyInactive,
    ApiKeyNotFound,
    HoldNotFound,
    HoldReleased,
    IdempotencyConflict,
    InsufficientQuota,
    InvalidArgument,
    InvalidPageToken,
    LedgerInvariantViolated,
    MalformedSerial,
    OrderAlreadyPaid,
    OrderCancelled,
    OrderExpired,
    OrderNotFound,
    PaymentReferenceReused,
    PermissionDenied,
    QuotaError,
    ResellerNameTaken,
    ResellerNotFound,
    SerialCollision,
    Unauthenticated,
    UnbalancedTransaction,
)
from .domain.model import (
    ApiKey,
    Balance,
    LedgerEntry,
    Order,
    OrderState,
    Page,
    Principal,
    Reseller,
    Role,
    SerialInfo,
    SerialStatus,
)
from .domain.money import UNIT_PRICE_IDR
from .domain.serials import generate_serial, is_well_formed
from .holds import commit, hold, reap_expired_holds, release
from .ledger import available, balance, list_entries
from .orders import cancel_order, confirm_payment, expire_orders, get_order, list_orders, purchase
from .reconcile import ReconcileReport, reconcile
from .resellers import create_reseller, get_reseller, quota_owner_of
from .verification import verify_serial

__all__ = [
    "UNIT_PRICE_IDR",
    "AlreadyCommitted",
    "AmountMismatch",
    "ApiKey",
    "ApiKeyInactive",
    "ApiKeyNotFound",
    "Balance",
    "HoldNotFound",
    "HoldReleased",
    "IdempotencyConflict",
    "InsufficientQuota",
    "InvalidArgument",
    "InvalidPageToken",
    "LedgerEntry",
    "LedgerInvariantViolated",
    "MalformedSerial",
    "Order",
    "OrderAlreadyPaid",
    "OrderCancelled",
    "OrderExpired",
    "OrderNotFound",
    "OrderState",
    "Page",
    "PaymentReferenceReused",
    "PermissionDenied",
    "Principal",
    "QuotaError",
    "ReconcileReport",
    "Reseller",
    "ResellerNameTaken",
    "ResellerNotFound",
    "Role",
    "SerialCollision",
    "SerialInfo",
    "SerialStatus",
    "Unauthenticated",
    "UnbalancedTransaction",
    "authenticate",
    "authenticate_certificate",
    "available",
    "balance",
    "cancel_order",
    "certificate_fingerprint",
    "commit",
    "confirm_payment",
    "create_api_key",
    "create_reseller",
    "expire_orders",
    "generate_serial",
    "get_api_key",
    "get_order",
    "get_reseller",
    "hold",
    "is_well_formed",
    "issue_api_key",
    "key_id_of",
    "list_api_keys",
    "list_entries",
    "list_orders",
    "purchase",
    "quota_owner_of",
    "reap_expired_holds",
    "reconcile",
    "register_certificate",
    "release",
    "revoke_api_key",
    "revoke_certificate",
    "revoke_key",
    "rotate_api_key",
    "verify_serial",
]
