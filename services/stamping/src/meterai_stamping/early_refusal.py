"""Refuse an overloaded submission before it queues behind the work that overloads us.

gRPC Python hands every call to a worker thread of the server's pool. Under a surge every
worker is busy with accepted submissions (preparing a PDF, committing a hold), so a call that
is going to be refused waits in the pool's queue as long as an accepted one (hundreds of
milliseconds) only to be told "later". A refusal is worth something only if it is quick: the
client's retry policy is waiting for it.

:class:`EarlyRefusal` runs where gRPC looks up the handler of each new call, on the server's
network thread, before the call is queued. It asks :meth:`Admission.arrival`, which reads only
memory and never blocks. When the answer is already "no", the call gets a handler that
neither waits for nor parses the upload and that runs at once on the network thread (through the
behaviour's ``experimental_thread_pool`` attribute, which gRPC Python honours), so refusals never
wait behind accepted work, nor for another thread to be scheduled. It also refuses while the
oldest call queued for a worker has waited too long (the server itself, not the platform, is
the bottleneck then), so its queue stays short.

A call it lets in while the platform-wide limits are known to admit (a fresh backlog sample
below the high-water mark, the broker taking messages) carries that verdict to the servicer
(:func:`cleared_at_edge`): the decision is made when the call arrives, so a call does not wait
for a worker only to be refused then because the backlog moved meanwhile. Per-reseller limits
and everything the edge does not know yet are judged by the servicer's full admission check.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, NoReturn

import grpc

from meterai_common import metrics
from meterai_common.auth import Authenticator
from meterai_common.call_limit import InlinePool, inline_refusal
from meterai_common.grpc_errors import PUSHBACK_HEADER, abort_with, details_of
from meterai_stamping.admission import Admission, Overloaded

__all__ = ["PUSHBACK_HEADER", "EarlyRefusal", "cleared_at_edge", "refuse"]

QUEUE_PUSHBACK_MS = 1000
"""When the server's own workers are the bottleneck: their queue turns over in well under this."""


_CLEARED = ContextVar("meterai_cleared_at_edge", default=False)


def cleared_at_edge() -> bool:
    """Whether the call being served was let in by :class:`EarlyRefusal` with the
    platform-wide limits known to admit (see :meth:`Admission.admit`, ``platform_cleared``)."""
    return _CLEARED.get()


def refuse(context: grpc.ServicerContext, refused: Overloaded) -> NoReturn:
    """End the call with the refusal's status, message, retry advice (``RetryInfo`` and the
    pushback trailer) and reason (counted by its limit)."""
    metrics.SUBMITS_REFUSED.labels(refused.label).inc()
    abort_with(context, refused.code, str(refused), details_of(refused))


class EarlyRefusal(grpc.ServerInterceptor):  # type: ignore[misc]
    """Answers RESOURCE_EXHAUSTED / UNAVAILABLE at once for submissions admission would refuse.

    :param method: full gRPC method name to guard (``/package.Service/Method``).
    :param authenticator: knows the callers whose keys were resolved recently; a caller it
        does not know yet goes on to the servicer.
    :param reseller_of: the reseller id of such a principal.
    :param queue_wait: seconds the oldest call queued for a server worker has waited
        (:meth:`meterai_common.grpc_server.TimedThreadPool.oldest_wait`).
    :param queued: calls queued for a server worker
        (:meth:`meterai_common.grpc_server.TimedThreadPool.queued`).
    :param min_queued: shed only while at least this many calls are queued: a few calls
        waiting for the next free worker are the normal turnover of a busy server, not an
        overload (use the number of workers: a whole round of calls waiting).
    :param wait_target_s: while the oldest queued call has waited longer than this, new
        submissions are refused, so the server's queue stays short instead of growing into
        timeouts or gRPC's own concurrency limit (which refuses without a pushback). A burst on
        a quiet server is not refused: its queue drains, and the wait with it.
    """

    def __init__(
        self,
        method: str,
        admission: Admission,
        authenticator: Authenticator[Any],
        reseller_of: Callable[[Any], str],
        *,
        queue_wait: Callable[[], float] = lambda: 0.0,
        queued: Callable[[], int] = lambda: 0,
        min_queued: int = 0,
        wait_target_s: float = 0.1,
    ) -> None:
        self._method = method
        self._queue_wait = queue_wait
        self._queued = queued
        self._min_queued = min_queued
        self._wait_target_s = wait_target_s
        self._admission = admission
        self._authenticator = authenticator
        self._reseller_of = reseller_of
        self._pool = InlinePool()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if details.method != self._method:
            return continuation(details)
        principal = self._authenticator.known(details.invocation_metadata)
        reseller = None if principal is None else self._reseller_of(principal)
        arrival = self._admission.arrival(reseller)
        refused = arrival.refused or self._queue_refusal()
        if refused is not None:
            return inline_refusal(lambda context: refuse(context, refused), self._pool)
        handler = continuation(details)
        if handler is None or handler.unary_unary is None or not arrival.platform_cleared:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _cleared(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _queue_refusal(self) -> Overloaded | None:
        waited = self._queue_wait()
        if waited <= self._wait_target_s or self._queued() < self._min_queued:
            return None
        return Overloaded(
            f"the stamping service is busy: submissions have waited {waited * 1000:.0f} ms "
            "for a free worker",
            QUEUE_PUSHBACK_MS,
            "server_queue",
            reason="WORKERS_BUSY",
        )


def _cleared(behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    def serve_cleared(request: Any, context: grpc.ServicerContext) -> Any:
        token = _CLEARED.set(True)
        try:
            return behaviour(request, context)
        finally:
            _CLEARED.reset(token)

    return serve_cleared
