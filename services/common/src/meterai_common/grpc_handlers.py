"""Wrapping a gRPC method handler's behaviour, for server interceptors that observe calls.

Metrics and tracing both wrap whichever one of the four behaviours a handler has; they do it
here, one way, by replacing that field of the handler (a named tuple), so its serializers and
any field gRPC adds later are kept, and so is the behaviour's own thread pool
(``experimental_thread_pool``, which early refusals use to answer on the network thread):
an observer must not move a call to another pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

__all__ = ["wrap_behaviour"]

_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def wrap_behaviour(
    handler: grpc.RpcMethodHandler, wrap: Callable[[Any, bool], Any]
) -> grpc.RpcMethodHandler:
    """``handler`` with its behaviour replaced by ``wrap(behaviour, streaming)``, where
    ``streaming`` says the behaviour returns an iterator of responses."""
    for kind in _KINDS:
        behaviour = getattr(handler, kind)
        if behaviour is None:
            continue
        wrapped = wrap(behaviour, kind.endswith("stream"))
        pool = getattr(behaviour, "experimental_thread_pool", None)
        if pool is not None:
            wrapped.experimental_thread_pool = pool
        return handler._replace(**{kind: wrapped})  # type: ignore[no-any-return]
    return handler
