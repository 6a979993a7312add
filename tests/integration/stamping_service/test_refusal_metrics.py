"""A refusal answered at the edge, on the server's network thread while its only worker is
busy, is still counted: by reason in ``meterai_submits_refused_total`` and by status in the
gRPC metrics every server records (the interceptor keeps the refusal's own thread pool)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai_common import metrics
from meterai_common.auth import Authenticator
from meterai_common.grpc_server import TimedThreadPool, create_server
from meterai_common.tls import TlsFiles
from meterai_stamping.admission import Admission, AdmissionLimits
from meterai_stamping.bootstrap import SERVICE_NAME, SUBMIT_METHOD
from meterai_stamping.early_refusal import EarlyRefusal
from tests.support.channels import platform_channel

KEY = "key-of-a-counted-reseller"


class HeldServicer(stamping_pb2_grpc.StampingServiceServicer):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.reached = threading.Event()

    def SubmitDocument(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.reached.set()
        self.release.wait(10)
        return stamping_pb2.Job(job_id="accepted")


class Reseller:
    reseller_id = "r-counted"


class KeyOnly:
    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", KEY),)


@pytest.fixture
def served(tls_files: TlsFiles) -> Iterator[tuple[Any, HeldServicer, list[int], Admission]]:
    backlog = [0]
    admission = Admission(
        lambda: backlog[0], lambda reseller: 0, AdmissionLimits(backlog_high_water=100)
    )
    authenticator: Authenticator[Reseller] = Authenticator(lambda key: Reseller())
    authenticator(KeyOnly())
    servicer = HeldServicer()
    pool = TimedThreadPool(1)
    server = create_server(
        "stamping-metrics-test",
        "127.0.0.1",
        0,
        [(stamping_pb2_grpc.add_StampingServiceServicer_to_server, servicer)],
        [SERVICE_NAME],
        tls=tls_files.server("stamping"),
        pool=pool,
        interceptors=[
            EarlyRefusal(SUBMIT_METHOD, admission, authenticator, lambda p: p.reseller_id)
        ],
    )
    channel = platform_channel(tls_files, server.port)
    try:
        yield stamping_pb2_grpc.StampingServiceStub(channel), servicer, backlog, admission
    finally:
        servicer.release.set()
        channel.close()
        server.stop(0)


def _count(metric: Any, *labels: str) -> float:
    value: float = metric.labels(*labels)._value.get()
    return value


def _submit(stub: Any, timeout: float) -> Any:
    return stub.SubmitDocument(
        stamping_pb2.SubmitDocumentRequest(pdf=b"%PDF-"),
        metadata=(("x-api-key", KEY),),
        timeout=timeout,
    )


def test_an_edge_refusal_is_counted_by_reason_and_status_while_the_worker_is_busy(
    served: tuple[Any, HeldServicer, list[int], Admission],
) -> None:
    stub, servicer, backlog, admission = served
    refused_before = _count(metrics.SUBMITS_REFUSED, "backlog")
    exhausted_before = _count(metrics.GRPC_HANDLED, SUBMIT_METHOD, "RESOURCE_EXHAUSTED")
    ok_before = _count(metrics.GRPC_HANDLED, SUBMIT_METHOD, "OK")
    occupant = threading.Thread(target=_submit, args=(stub, 10.0), daemon=True)
    occupant.start()
    assert servicer.reached.wait(5)
    backlog[0] = 500
    admission.backlog()

    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as refused:
        _submit(stub, timeout=2.0)
    elapsed = time.monotonic() - started

    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert elapsed < 1.0, "wrapping the refusal made it wait for the busy worker"
    assert _count(metrics.SUBMITS_REFUSED, "backlog") == refused_before + 1
    exhausted = _count(metrics.GRPC_HANDLED, SUBMIT_METHOD, "RESOURCE_EXHAUSTED")
    assert exhausted == exhausted_before + 1
    servicer.release.set()
    occupant.join(5)
    assert _count(metrics.GRPC_HANDLED, SUBMIT_METHOD, "OK") == ok_before + 1
