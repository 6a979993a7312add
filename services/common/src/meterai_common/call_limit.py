"""A bound on the calls a server holds at once that refuses with retry advice.

gRPC Python's own ``maximum_concurrent_rpcs`` answers RESOURCE_EXHAUSTED "Concurrent RPC limit
exceeded!" with no pushback and no details, so a client cannot tell an overload it should wait
out from a quota it ran out of. :class:`CallLimit` takes its place: the first interceptor of
every server counts the calls accepted and not finished, and beyond the limit answers at once,
on the network thread, RESOURCE_EXHAUSTED with reason ``SERVER_CONCURRENCY_LIMIT``, a
``RetryInfo`` and the ``grpc-retry-pushback-ms`` trailer. What it bounds is the same: the
memory of calls queued for the server's workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, NoReturn

import grpc

from meterai_common.grpc_errors import ErrorDetails, abort_with

__all__ = ["CALL_LIMIT_PUSHBACK_MS", "CallLimit", "InlinePool", "inline_refusal"]

CALL_LIMIT_PUSHBACK_MS = 500
"""Advice with a refusal at the limit: the server's queue turns over well within this."""


class InlinePool(futures.ThreadPoolExecutor):
    """Runs each submitted call at once, on the submitting thread (the server's network
    thread), and starts no thread: a refusal only sets a status and must not wait for a
    worker. gRPC Python accepts only a ``ThreadPoolExecutor`` as a method's own pool
    (``experimental_thread_pool``), hence the subclass. What runs here must not block."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="grpc-inline")

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: futures.Future[Any] = futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the future, as a pool would
            future.set_exception(error)
        return future


class _Refuse:
    """A refused call's behaviour; the pool attribute runs it where it arrived."""

    def __init__(
        self, refuse: Callable[[grpc.ServicerContext], NoReturn], pool: InlinePool
    ) -> None:
        self.experimental_thread_pool = pool
        self._refuse = refuse

    def __call__(self, _requests: Iterator[Any], context: grpc.ServicerContext) -> NoReturn:
        self._refuse(context)


def inline_refusal(
    refuse: Callable[[grpc.ServicerContext], NoReturn], pool: InlinePool
) -> grpc.RpcMethodHandler:
    """A handler that ends the call with ``refuse`` at once, on the network thread.

    Served as a client stream, so the refusal goes out without waiting for the request: a
    unary handler only runs once the whole request message (an upload) has arrived.
    """
    return grpc.stream_unary_rpc_method_handler(_Refuse(refuse, pool))


class CallLimit(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses, with retry advice, calls beyond ``limit`` submitted to the server's workers
    and not finished (``outstanding``: :meth:`TimedThreadPool.outstanding`, which counts a
    call cancelled before it started too, until the pool has passed it)."""

    def __init__(self, limit: int, outstanding: Callable[[], int]) -> None:
        self._limit = limit
        self._outstanding = outstanding
        self._pool = InlinePool()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if self._outstanding() < self._limit:
            return continuation(details)
        return inline_refusal(self._refuse, self._pool)

    def _refuse(self, context: grpc.ServicerContext) -> NoReturn:
        abort_with(
            context,
            "RESOURCE_EXHAUSTED",
            f"the server is holding {self._limit} calls, its limit; nothing was charged, "
            f"retry in {CALL_LIMIT_PUSHBACK_MS / 1000:g} s",
            ErrorDetails("SERVER_CONCURRENCY_LIMIT", retry_after_ms=CALL_LIMIT_PUSHBACK_MS),
        )
