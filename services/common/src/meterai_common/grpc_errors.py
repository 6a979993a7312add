"""Translation of domain errors to gRPC statuses, with rich details, in one place.

Domain errors across the services carry a ``code`` class attribute naming a
:class:`grpc.StatusCode` (``"FAILED_PRECONDITION"``, ...) and a message written for the person
who made the request. Servicers run their body inside :func:`status_from_errors`; anything
without a code is a bug: it is logged with a reference and the client gets INTERNAL with that
reference, never our internals.

Every status also carries ``google.rpc.Status`` details in the ``grpc-status-details-bin``
trailer (``grpcio-status``), so a client in any language can act without parsing English:

* ``ErrorInfo`` on every error: ``reason`` is a stable code per error (``INSUFFICIENT_QUOTA``,
  ``RECT_OUTSIDE_PAGE``, ...; the error's ``reason`` attribute, else its class name in
  UPPER_SNAKE), ``domain`` is :data:`DOMAIN`;
* ``BadRequest`` field violations on INVALID_ARGUMENT when the field is known (the error's
  ``field`` attribute, the servicer's map of reasons to fields, or a message that starts with
  a field of the request, as the services' validation messages do);
* ``RetryInfo`` on every refusal that asks the client to come back (the error's
  ``pushback_ms``), mirrored in the ``grpc-retry-pushback-ms`` trailer that gRPC's own retry
  policies read;
* ``QuotaFailure`` when a quota ran out (the error's ``quota_subject``): the reseller's stamp
  quota, its rate limit or its documents in flight.
"""

from __future__ import annotations

import collections
import logging
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import Descriptor
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from meterai_common.outages import is_database_outage

__all__ = [
    "DOMAIN",
    "PUSHBACK_HEADER",
    "ErrorDetails",
    "RequestError",
    "abort",
    "abort_with",
    "details_of",
    "reason_of",
    "rich_status",
    "status_from_errors",
]

log = logging.getLogger(__name__)

DOMAIN = "meterai.id"
"""``ErrorInfo.domain`` of every error the platform raises."""
PUSHBACK_HEADER = "grpc-retry-pushback-ms"
"""The trailer gRPC clients' retry policies read to know when to come back (gRFC A6)."""
DATABASE_RETRY_MS = 1000
"""Advice given with a database outage: long enough for a fail-over to be noticed."""


class RequestError(Exception):
    """A request the servicer itself finds wrong (missing field, malformed value).

    :param reason: the stable ``ErrorInfo.reason``; the status code's name if not given.
    :param field: the request field at fault (``BadRequest`` field violation).
    """

    def __init__(
        self, code: str, message: str, *, reason: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason or code
        if field is not None:
            self.field = field


@dataclass(frozen=True)
class ErrorDetails:
    """What a status carries beside its code and message."""

    reason: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    retry_after_ms: int | None = None
    field_violations: Sequence[tuple[str, str]] = ()
    quota_violations: Sequence[tuple[str, str]] = ()


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).upper()


def reason_of(error: BaseException) -> str:
    """The stable reason code of a domain error."""
    explicit = getattr(error, "reason", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    return _camel_to_snake(type(error).__name__)


def rich_status(code: str, message: str, details: ErrorDetails) -> grpc.Status:
    """A status with ``google.rpc`` details (and the pushback trailer when there is advice)."""
    packed: list[Any] = [
        error_details_pb2.ErrorInfo(
            reason=details.reason, domain=DOMAIN, metadata=dict(details.metadata)
        )
    ]
    if details.field_violations:
        packed.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=name, description=text)
                    for name, text in details.field_violations
                ]
            )
        )
    if details.quota_violations:
        packed.append(
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(subject=subject, description=text)
                    for subject, text in details.quota_violations
                ]
            )
        )
    if details.retry_after_ms is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(details.retry_after_ms)
        packed.append(error_details_pb2.RetryInfo(retry_delay=delay))
    anys = []
    for message_detail in packed:
        wrapped = any_pb2.Any()
        wrapped.Pack(message_detail)
        anys.append(wrapped)
    status_code = getattr(grpc.StatusCode, code)
    status = rpc_status.to_status(
        status_pb2.Status(code=status_code.value[0], message=message, details=anys)
    )
    if details.retry_after_ms is None:
        return status
    return _Status(
        status.code,
        status.details,
        (*status.trailing_metadata, (PUSHBACK_HEADER, str(details.retry_after_ms))),
    )


class _Status(
    collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status
):
    """A status with our trailers (``grpc_status`` builds one with its details trailer only)."""


def abort_with(
    context: grpc.ServicerContext, code: str, message: str, details: ErrorDetails
) -> NoReturn:
    """Abort the RPC with a rich status; raises, never returns."""
    context.abort_with_status(rich_status(code, message, details))
    raise AssertionError("grpc's abort returned")  # pragma: no cover


def abort(
    context: grpc.ServicerContext, code: str, message: str, *, reason: str | None = None
) -> NoReturn:
    """Abort the RPC with the status named ``code`` and an ``ErrorInfo``; never returns."""
    abort_with(context, code, message, ErrorDetails(reason or code))


def details_of(
    error: BaseException,
    request: Any = None,
    fields: Mapping[str, str] | None = None,
) -> ErrorDetails:
    """The details a domain error carries (see the module docstring)."""
    reason = reason_of(error)
    code = getattr(error, "code", "")
    violations: list[tuple[str, str]] = []
    if code == "INVALID_ARGUMENT":
        name = getattr(error, "field", None) or (fields or {}).get(reason)
        if name is None and request is not None:
            name = _leading_field(str(error), request.DESCRIPTOR)
        if name is not None:
            violations.append((name, str(error)))
    pushback = getattr(error, "pushback_ms", None)
    subject = getattr(error, "quota_subject", None)
    metadata = getattr(error, "error_metadata", None)
    return ErrorDetails(
        reason=reason,
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
        retry_after_ms=int(pushback) if isinstance(pushback, int) else None,
        field_violations=violations,
        quota_violations=[(subject, str(error))] if isinstance(subject, str) else [],
    )


_FIELD_PATH = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)\b")


def _leading_field(message: str, descriptor: Descriptor) -> str | None:
    """The request field a message starts with (``placement.page must be ...``), if it is
    one of ``descriptor``'s fields (nested fields followed through message types)."""
    match = _FIELD_PATH.match(message)
    if match is None:
        return None
    current: Descriptor | None = descriptor
    for part in match.group(1).split("."):
        found = current.fields_by_name.get(part) if current is not None else None
        if found is None:
            return None
        current = found.message_type
    return match.group(1)


@contextmanager
def status_from_errors(
    context: grpc.ServicerContext,
    request: Any = None,
    *,
    fields: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Run a servicer body; turn what it raises into a status with details.

    :param request: the request message, to name the field an INVALID_ARGUMENT is about.
    :param fields: reason code → request field, for errors whose message does not start
        with the field (``RECT_OUTSIDE_PAGE`` → ``placement.rect``).
    """
    try:
        yield
    except Exception as error:
        code = getattr(error, "code", None)
        if isinstance(code, str) and hasattr(grpc.StatusCode, code):
            abort_with(context, code, str(error), details_of(error, request, fields))
        if type(error) is Exception and not error.args:
            raise  # grpc's own abort() unwinding
        if is_database_outage(error):
            log.warning("database unavailable: %s", error)
            abort_with(
                context,
                "UNAVAILABLE",
                "the database is unavailable; nothing was charged, retry",
                ErrorDetails("DATABASE_UNAVAILABLE", retry_after_ms=DATABASE_RETRY_MS),
            )
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error (ref %s)", reference)
        abort_with(
            context,
            "INTERNAL",
            f"internal error, reference {reference}",
            ErrorDetails("INTERNAL", {"reference": reference}),
        )
