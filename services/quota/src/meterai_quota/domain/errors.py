"""The one error tree of the quota service.

Every error carries a ``code`` class attribute naming the gRPC status the API layer must return,
so the mapping lives with the error and servicers never guess. Messages are written for the
reseller or operator who will read them.
"""

from __future__ import annotations

__all__ = [
    "AlreadyCommitted",
    "AmountMismatch",
    "ApiKeyInactive",
    "ApiKeyNotFound",
    "HoldNotFound",
    "HoldReleased",
    "IdempotencyConflict",
    "InsufficientQuota",
    "InvalidArgument",
    "InvalidPageToken",
    "LedgerInvariantViolated",
    "MalformedSerial",
    "OrderAlreadyPaid",
    "OrderCancelled",
    "OrderExpired",
    "OrderNotFound",
    "PaymentReferenceReused",
    "PermissionDenied",
    "QuotaError",
    "ResellerNameTaken",
    "ResellerNotFound",
    "SerialCollision",
    "Unauthenticated",
    "UnbalancedTransaction",
]


class QuotaError(Exception):
    """Base of every error raised by :mod:`meterai_quota`."""

    code: str = "FAILED_PRECONDITION"
    """gRPC status code name the API layer maps this error to."""


class InvalidArgument(QuotaError):
    """A request field is out of range or malformed."""

    code = "INVALID_ARGUMENT"


class InvalidPageToken(InvalidArgument):
    """A page token was not produced by the listing it was passed to."""


class MalformedSerial(InvalidArgument):
    """A serial fails the format or check-character test, so it cannot exist; no lookup is made."""


class AmountMismatch(InvalidArgument):
    """A payment amount differs from the order total; the payment is not applied."""


class Unauthenticated(QuotaError):
    """The API key is unknown or revoked."""

    code = "UNAUTHENTICATED"


class PermissionDenied(QuotaError):
    """The principal may not act on this reseller's data."""

    code = "PERMISSION_DENIED"


class ApiKeyNotFound(QuotaError):
    code = "NOT_FOUND"


class ApiKeyInactive(QuotaError):
    """The key is revoked or past its grace period: it cannot be rotated."""

    code = "FAILED_PRECONDITION"


class ResellerNameTaken(QuotaError):
    """Another reseller already has this name (compared without case and surrounding space)."""

    code = "ALREADY_EXISTS"

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.error_metadata = {"name": name} if name else {}
        """``ErrorInfo.metadata``: the name refused, so a client need not parse the message."""


class ResellerNotFound(QuotaError):
    code = "NOT_FOUND"


class OrderNotFound(QuotaError):
    code = "NOT_FOUND"


class HoldNotFound(QuotaError):
    """No serial was ever held for this job."""

    code = "NOT_FOUND"


class IdempotencyConflict(QuotaError):
    """The idempotency key was already used for a different request."""

    code = "ALREADY_EXISTS"


class PaymentReferenceReused(QuotaError):
    """The payment reference was already applied to another order."""

    code = "ALREADY_EXISTS"


class SerialCollision(QuotaError):
    """The proposed serial already belongs to another job (live or void); draw a new one."""

    code = "ALREADY_EXISTS"


NO_QUOTA_MESSAGE = (
    "no stamp quota available: buy quota first (PurchaseQuota, or 'meterai quota buy N'); "
    "nothing was charged"
)
"""The one wording of this refusal, whichever check finds it (the submit's early check or
the hold in its transaction): a client matching on it, or a person reading it, sees one text."""


class InsufficientQuota(QuotaError):
    """No available unit to hold: buy more quota or wait for in-flight stamps to finish."""

    code = "FAILED_PRECONDITION"
    quota_subject = "reseller:stamp_quota"
    """Reported as a ``QuotaFailure`` violation: the reseller's available units ran out."""

    def __init__(self, message: str = NO_QUOTA_MESSAGE) -> None:
        super().__init__(message)


class OrderExpired(QuotaError):
    code = "FAILED_PRECONDITION"


class OrderCancelled(QuotaError):
    code = "FAILED_PRECONDITION"


class OrderAlreadyPaid(QuotaError):
    code = "FAILED_PRECONDITION"


class AlreadyCommitted(QuotaError):
    """The job's serial is already issued; an issued stamp cannot be released."""

    code = "FAILED_PRECONDITION"


class HoldReleased(QuotaError):
    """The job's hold was released and its serial voided; the job cannot be committed."""

    code = "FAILED_PRECONDITION"


class UnbalancedTransaction(QuotaError):
    """A ledger transaction whose entries do not sum to zero was about to be written.

    This is a programming error; it is raised before anything touches the database.
    """

    code = "ABORTED"


class LedgerInvariantViolated(QuotaError):
    """The stored ledger contradicts itself (e.g. a held serial without a held unit).

    Raised instead of writing anything that would make it worse; ``ABORTED`` so the caller's
    transaction is rolled back and the operator alerted by reconciliation.
    """

    code = "ABORTED"
