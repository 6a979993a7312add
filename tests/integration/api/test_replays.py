"""Retrying a submission is always safe: replays of one idempotency key, sent at once right
after a burst and while the first job is still waiting for its signature, all answer OK with
the same job, on SQLite (the embedded platform) and on PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from meterai.stamping.v1 import stamping_pb2
from tests.integration.api.conftest import ApiWorld

REPLAYS = 20


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
        answers = list(
            pool.map(
                lambda _: stub.SubmitDocument(request, metadata=auth, timeout=60), range(REPLAYS)
            )
        )
    assert {answer.job_id for answer in answers} != {""}
    assert len({answer.job_id for answer in answers}) == 1
    assert api_world.jobs_with_key(key) == 1


def test_a_replay_after_the_first_answer_returns_the_prepared_job(api_world: ApiWorld) -> None:
    stub = api_world.stamping_stub()
    request = api_world.submit_request()
    first = stub.SubmitDocument(request, metadata=api_world.reseller.auth, timeout=60)
    again = stub.SubmitDocument(request, metadata=api_world.reseller.auth, timeout=60)
    assert again.job_id == first.job_id
    assert again.state == stamping_pb2.JOB_STATE_PREPARED
