"""Under overload a submission that will be refused is told so at once, even while every
worker of the server is busy with accepted submissions; everything else still reaches the
servicer, whose admission check stays the authority."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai_common.auth import Authenticator
from meterai_common.grpc_server import RunningServer, TimedThreadPool, create_server
from meterai_common.tls import TlsFiles
from meterai_stamping.admission import Admission, AdmissionLimits
from meterai_stamping.bootstrap import SERVICE_NAME, SUBMIT_METHOD
from meterai_stamping.early_refusal import PUSHBACK_HEADER, EarlyRefusal, cleared_at_edge
from tests.support.channels import platform_channel

KNOWN_KEY = "key-of-a-busy-reseller"


@dataclass(frozen=True)
class Principal:
    reseller_id: str


class BusyServicer(stamping_pb2_grpc.StampingServiceServicer):
    """Each submission it accepts holds its worker until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.reached = 0
        self.cleared: list[bool] = []

    def SubmitDocument(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.reached += 1
        self.cleared.append(cleared_at_edge())
        self.release.wait(10)
        return stamping_pb2.Job(job_id="accepted")


@dataclass(frozen=True)
class KeyOnly:
    """The part of a servicer context the authenticator reads."""

    key: str

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-api-key", self.key),)


@dataclass
class Platform:
    server: RunningServer
    servicer: BusyServicer
    stub: stamping_pb2_grpc.StampingServiceStub
    backlog: list[int]
    admission: Admission


@pytest.fixture
def platform(request: pytest.FixtureRequest, tls_files: TlsFiles) -> Iterator[Platform]:
    """One server worker; ``min_queued`` (indirect parameter, default 1) of the shedding."""
    min_queued = getattr(request, "param", 1)
    backlog = [0]
    admission = Admission(
        lambda: backlog[0], lambda reseller: 0, AdmissionLimits(backlog_high_water=100)
    )
    authenticator: Authenticator[Principal] = Authenticator(lambda key: Principal("r-busy"))
    servicer = BusyServicer()
    pool = TimedThreadPool(1)
    server = create_server(
        "stamping-test",
        "127.0.0.1",
        0,
        [(stamping_pb2_grpc.add_StampingServiceServicer_to_server, servicer)],
        [SERVICE_NAME],
        tls=tls_files.server("stamping"),
        pool=pool,
        interceptors=[
            EarlyRefusal(
                SUBMIT_METHOD,
                admission,
                authenticator,
                lambda p: p.reseller_id,
                queue_wait=pool.oldest_wait,
                queued=pool.queued,
                min_queued=min_queued,
                wait_target_s=0.05,
            )
        ],
    )
    authenticator(KeyOnly(KNOWN_KEY))  # resolved by an earlier call, as under load
    channel = platform_channel(tls_files, server.port)
    try:
        yield Platform(
            server, servicer, stamping_pb2_grpc.StampingServiceStub(channel), backlog, admission
        )
    finally:
        servicer.release.set()
        channel.close()
        server.stop(0)


def _submit(platform: Platform, key: str = KNOWN_KEY, timeout: float = 5.0) -> Any:
    return platform.stub.SubmitDocument.with_call(
        stamping_pb2.SubmitDocumentRequest(pdf=b"%PDF-" + b"x" * 100_000),
        metadata=((("x-api-key", key),)),
        timeout=timeout,
    )


def _occupy_the_only_worker(platform: Platform) -> threading.Thread:
    caller = threading.Thread(target=_submit, args=(platform,), daemon=True)
    caller.start()
    deadline = time.monotonic() + 5
    while platform.servicer.reached == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert platform.servicer.reached == 1
    return caller


def test_a_known_refusal_is_answered_while_every_worker_is_busy(platform: Platform) -> None:
    occupant = _occupy_the_only_worker(platform)
    platform.backlog[0] = 500
    platform.admission.backlog()  # sampled by an earlier call, as under load

    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as refused:
        _submit(platform, timeout=2.0)
    elapsed = time.monotonic() - started

    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "500 documents are waiting" in refused.value.details()
    assert "nothing was charged" in refused.value.details()
    assert dict(refused.value.trailing_metadata())[PUSHBACK_HEADER] == "2000"
    assert elapsed < 1.0, "the refusal waited for the busy worker"
    assert platform.servicer.reached == 1
    platform.servicer.release.set()
    occupant.join(5)


def test_while_submissions_wait_too_long_for_a_worker_new_ones_are_refused(
    platform: Platform,
) -> None:
    platform.admission.backlog()  # the platform itself is quiet
    occupant = _occupy_the_only_worker(platform)
    queued = threading.Thread(target=_submit, args=(platform,), daemon=True)
    queued.start()
    time.sleep(0.3)  # the second submission has waited this long for the only worker

    with pytest.raises(grpc.RpcError) as refused:
        _submit(platform)

    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "for a free worker" in refused.value.details()
    assert dict(refused.value.trailing_metadata())[PUSHBACK_HEADER] == "1000"
    platform.servicer.release.set()
    occupant.join(5)
    queued.join(5)
    assert platform.servicer.reached == 2

    response, _call = _submit(platform)  # the queue drained: a new call is served at once
    assert response.job_id == "accepted"


@pytest.mark.parametrize("platform", [2], indirect=True)
def test_a_call_or_two_waiting_for_the_next_free_worker_is_not_an_overload(
    platform: Platform,
) -> None:
    platform.admission.backlog()
    occupant = _occupy_the_only_worker(platform)
    queued = threading.Thread(target=_submit, args=(platform,), daemon=True)
    queued.start()
    time.sleep(0.3)  # it has waited long, but it is the only one waiting

    third = threading.Thread(target=_submit, args=(platform,), daemon=True)
    third.start()
    time.sleep(0.2)
    platform.servicer.release.set()
    for caller in (occupant, queued, third):
        caller.join(5)

    assert platform.servicer.reached == 3  # all served, none refused


def test_platform_limits_refuse_even_a_caller_not_known_yet(platform: Platform) -> None:
    platform.backlog[0] = 500
    platform.admission.backlog()  # sampled by an earlier call, as under load

    with pytest.raises(grpc.RpcError) as refused:
        _submit(platform, key="a-key-never-seen")

    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert platform.servicer.reached == 0


def test_a_call_let_in_at_arrival_is_not_judged_again_on_platform_limits(
    platform: Platform,
) -> None:
    platform.admission.backlog()  # 0 waiting, sampled just now
    platform.servicer.release.set()

    response, _call = _submit(platform, key="a-key-never-seen")

    assert response.job_id == "accepted"
    assert platform.servicer.cleared == [True]


def test_without_a_fresh_sample_the_servicer_decides(platform: Platform) -> None:
    platform.backlog[0] = 500  # never sampled: the shortcut knows nothing
    platform.servicer.release.set()

    response, _call = _submit(platform)

    assert response.job_id == "accepted"
    assert platform.servicer.reached == 1
    assert platform.servicer.cleared == [False]  # so the servicer's check samples and decides


def test_other_methods_are_not_touched(platform: Platform) -> None:
    platform.backlog[0] = 500
    platform.admission.backlog()  # sampled by an earlier call, as under load

    with pytest.raises(grpc.RpcError) as error:
        platform.stub.GetJob(
            stamping_pb2.GetJobRequest(job_id="j"),
            metadata=((("x-api-key", KNOWN_KEY),)),
            timeout=2.0,
        )

    assert error.value.code() is grpc.StatusCode.UNIMPLEMENTED
