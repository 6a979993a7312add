"""A failed call as a Python exception carrying the platform's ``google.rpc`` details."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["MeteraiError", "StampFailed", "error_of"]


@dataclass
class MeteraiError(Exception):
    """The platform refused a call (or could not be reached).

    :ivar code: the gRPC status.
    :ivar reason: the stable ``ErrorInfo.reason`` (``INSUFFICIENT_QUOTA``, ...); empty when
        the refusal came from the network rather than from the platform.
    :ivar retry_after_s: the ``RetryInfo`` delay, when the platform asked to come back.
    :ivar field_violations: ``(field, description)`` pairs of a ``BadRequest``.
    :ivar quota_violations: ``(subject, description)`` pairs of a ``QuotaFailure``.
    """

    code: grpc.StatusCode
    message: str
    reason: str = ""
    retry_after_s: float | None = None
    field_violations: list[tuple[str, str]] = field(default_factory=list)
    quota_violations: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code.name}{f' ({self.reason})' if self.reason else ''}: {self.message}"

    @property
    def retryable(self) -> bool:
        """The platform asked to come back later (overload, an outage)."""
        return self.retry_after_s is not None


class StampFailed(Exception):
    """The job ended without a stamp; its quota unit was refunded."""

    def __init__(self, job_id: str, code: str, reason: str) -> None:
        super().__init__(f"job {job_id} failed: {code}: {reason} (quota refunded)")
        self.job_id = job_id
        self.code = code
        self.reason = reason


def error_of(error: grpc.RpcError) -> MeteraiError:
    """Decode a failed call's status and details."""
    code = error.code()  # type: ignore[attr-defined]
    found = MeteraiError(code, error.details() or code.name)  # type: ignore[attr-defined]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for packed in status.details if status is not None else []:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            found.reason = info.reason
        elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            packed.Unpack(retry)
            found.retry_after_s = retry.retry_delay.ToMilliseconds() / 1000
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            found.field_violations = [(v.field, v.description) for v in bad.field_violations]
        elif packed.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            packed.Unpack(quota)
            found.quota_violations = [(v.subject, v.description) for v in quota.violations]
    return found
