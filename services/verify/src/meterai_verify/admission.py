"""VerifyDocument calls refused before their upload is read, while verification is busy.

A unary gRPC handler runs only once the whole request has arrived and been deserialized: a
flood of 10 MB uploads would make the server receive and copy every one of them just to say
"busy", at the expense of every other call in the process. This interceptor decides when the
call starts, from an in-memory count, and answers a refused call as a client stream that
never reads its request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import NoReturn

import grpc

from meterai_common.grpc_errors import ErrorDetails, abort_with
from meterai_verify.memory_return import MemoryReturn

__all__ = ["BusyRefusal", "InFlight"]

PUSHBACK_MS = "1000"


class InFlight:
    """Calls being verified or waiting for a worker, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    @property
    def full(self) -> bool:
        return self._count >= self.limit

    def enter(self) -> bool:
        with self._lock:
            if self._count >= self.limit:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1


def _refuse(_requests: Iterator[bytes], context: grpc.ServicerContext) -> NoReturn:
    abort_with(
        context,
        "RESOURCE_EXHAUSTED",
        "verification is busy: retry in 1 s",
        ErrorDetails("VERIFICATION_BUSY", retry_after_ms=int(PUSHBACK_MS)),
    )


class BusyRefusal(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses ``method`` at once while ``in_flight`` is full, without reading the upload.

    gRPC has still received part of the upload (what HTTP/2 flow control let the client send)
    when the refusal goes out; ``memory``, if given, is asked to give that back soon.
    """

    def __init__(
        self, method: str, in_flight: InFlight, memory: MemoryReturn | None = None
    ) -> None:
        self._method = method
        self._in_flight = in_flight
        self._memory = memory

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if details.method == self._method and self._in_flight.full:
            if self._memory is not None:
                self._memory.soon()
            return grpc.stream_unary_rpc_method_handler(_refuse)
        return continuation(details)
