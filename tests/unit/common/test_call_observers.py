"""The interceptors that observe calls (metrics, traces) change nothing about how a call is
served: the same serializers, the same answer, and the behaviour's own thread pool, which the
stamping service's early refusals rely on to answer on the network thread while every worker
thread is busy."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import grpc
import pytest

from meterai_common.metrics import GrpcMetrics
from meterai_common.tracing import GrpcTracing


class _Details(NamedTuple):
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class _Context:
    def code(self) -> grpc.StatusCode | None:
        return None


def _behaviour(streaming: bool) -> Any:
    """A new behaviour each time: a test sets attributes on it."""
    if streaming:

        def stream(request: bytes, context: Any) -> Iterator[bytes]:
            yield request
            yield request.upper()

        return stream

    def unary(request: bytes, context: Any) -> bytes:
        return request.upper()

    return unary


def _decode(data: bytes) -> bytes:
    return data


def _encode(data: bytes) -> bytes:
    return data


@pytest.mark.parametrize("observer", [GrpcMetrics(), GrpcTracing()], ids=["metrics", "traces"])
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
def test_an_observed_call_keeps_its_pool_serializers_and_answer(
    observer: grpc.ServerInterceptor, streaming: bool
) -> None:
    pool = ThreadPoolExecutor(1)
    try:
        behaviour = _behaviour(streaming)
        behaviour.experimental_thread_pool = pool
        handler = (
            grpc.unary_stream_rpc_method_handler
            if streaming
            else grpc.unary_unary_rpc_method_handler
        )(behaviour, request_deserializer=_decode, response_serializer=_encode)
        observed = observer.intercept_service(
            lambda details: handler, _Details("/meterai.test.v1.Probe/Call", ())
        )
        served = observed.unary_stream if streaming else observed.unary_unary
        assert served is not behaviour  # it is observed ...
        assert served.experimental_thread_pool is pool  # ... on the pool it chose
        assert observed.request_deserializer is _decode
        assert observed.response_serializer is _encode
        answer = served(b"stamp", _Context())
        assert (list(answer) if streaming else answer) == (
            [b"stamp", b"STAMP"] if streaming else b"STAMP"
        )
    finally:
        pool.shutdown()
