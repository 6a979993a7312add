"""Translation of domain errors to gRPC statuses, in one place.

Domain errors across the services carry a ``code`` class attribute naming a
:class:`grpc.StatusCode` (``"FAILED_PRECONDITION"``, ...) and a message written for the person
who made the request. Servicers run their body inside :func:`status_from_errors`; anything
without a code is a bug: it is logged with a reference and the client gets INTERNAL with that
reference, never our internals.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from meterai_common.outages import is_database_outage

__all__ = ["RequestError", "abort", "status_from_errors"]

log = logging.getLogger(__name__)


class RequestError(Exception):
    """A request the servicer itself finds wrong (missing field, malformed value)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def abort(context: grpc.ServicerContext, code: str, message: str) -> None:
    """Abort the RPC with the status named ``code``; raises, never returns."""
    context.abort(getattr(grpc.StatusCode, code), message)


@contextmanager
def status_from_errors(context: grpc.ServicerContext) -> Iterator[None]:
    try:
        yield
    except Exception as error:
        code = getattr(error, "code", None)
        if isinstance(code, str) and hasattr(grpc.StatusCode, code):
            abort(context, code, str(error))
        if type(error) is Exception and not error.args:
            raise  # grpc's own abort() unwinding
        if is_database_outage(error):
            log.warning("database unavailable: %s", error)
            abort(context, "UNAVAILABLE", "the database is unavailable; nothing was charged, retry")
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error (ref %s)", reference)
        abort(context, "INTERNAL", f"internal error, reference {reference}")
