"""Retrying a submission is always safe: replays of one idempotency key, sent at once right
after a burst and while the first job is still waiting for its signature, all answer OK with
the same job, on SQLite (the embedded platform) and on PostgreSQL. The client retries what the
server asks it to retry later (a busy server sheds a burst), as gRPC's retry policy does."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from meterai.stamping.v1 import stamping_pb2
from tests.integration.api.conftest import ApiWorld

REPLAYS = 20
RETRY_INFO = error_details_pb2.RetryInfo.DESCRIPTOR


def test_twenty_concurrent_replays_give_twenty_oks_and_one_job(api_world: ApiWorld) -> None:
    stub = api_world.stamping_stub()
    auth = api_world.reseller.auth
    burst = [
        stub.SubmitDocument.future(api_world.submit_request(), metadata=auth, timeout=60)
        for _ in range(5)
    ]
    for call in burst:
        call.result()
    key = str(uuid.uuid4())
    request = api_world.submit_request(key)
    with ThreadPoolExecutor(REPLAYS) as pool:
        answers = list(pool.map(lambda _: _submit_as_advised(stub, request, auth), range(REPLAYS)))
    assert {answer.job_id for answer in answers} != {""}
    assert len({answer.job_id for answer in answers}) == 1
    assert api_world.jobs_with_key(key) == 1


def _submit_as_advised(stub: Any, request: Any, auth: Any) -> Any:
    """Submit; a refusal that asks to come back later is retried after the delay it gives,
    as the README tells integrators to (same key); anything else fails the test."""
    for _ in range(20):
        try:
            return stub.SubmitDocument(request, metadata=auth, timeout=60)
        except grpc.RpcError as error:
            status = rpc_status.from_call(error)  # type: ignore[arg-type]
            advice = [d for d in (status.details if status else []) if d.Is(RETRY_INFO)]
            assert advice, (error.code(), error.details())
            retry = error_details_pb2.RetryInfo()
            advice[0].Unpack(retry)
            time.sleep(retry.retry_delay.ToMilliseconds() / 1000)
    raise AssertionError("still refused after 20 attempts")


def test_a_replay_after_the_first_answer_returns_the_prepared_job(api_world: ApiWorld) -> None:
    stub = api_world.stamping_stub()
    request = api_world.submit_request()
    first = stub.SubmitDocument(request, metadata=api_world.reseller.auth, timeout=60)
    again = stub.SubmitDocument(request, metadata=api_world.reseller.auth, timeout=60)
    assert again.job_id == first.job_id
    assert again.state == stamping_pb2.JOB_STATE_PREPARED
