"""``expected_wait_ms`` is an honest forecast: a job submitted behind a real backlog that the
platform drains at a steady rate is announced within a factor of two of the time it then
takes, after a quiet spell as well as in steady work (the drain rate is measured while the
platform works, not averaged over the idle time before a burst)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from meterai.stamping.v1 import stamping_pb2
from tests.integration.api.conftest import ApiWorld
from tests.support.databases import migrated_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test's own: the queue it measures is the only one in it (the
    session's shared PostgreSQL database holds other tests' jobs, never signed)."""
    if request.param == "sqlite":
        yield str(request.getfixturevalue("sqlite_url"))
        return
    with migrated_postgres_database("meterai_wait") as url:
        yield url


BACKLOG = 40
PAUSE_S = 0.04
"""Between two signatures: the signing tier of this test drains about 20 documents a second."""


def test_the_announced_wait_matches_the_wait_behind_a_real_backlog(api_world: ApiWorld) -> None:
    stub = api_world.stamping_stub()
    auth = api_world.reseller.auth
    queued = [
        stub.SubmitDocument(api_world.submit_request(), metadata=auth, timeout=60).job_id
        for _ in range(BACKLOG)
    ]
    done: dict[str, float] = {}
    stop = threading.Event()

    def signing_tier() -> None:
        while not stop.is_set():
            if not queued:
                time.sleep(0.005)
                continue
            job_id = queued.pop(0)
            api_world.sign(job_id)
            done[job_id] = time.monotonic()
            time.sleep(PAUSE_S)

    worker = threading.Thread(target=signing_tier, daemon=True)
    worker.start()
    try:
        while len(done) < BACKLOG // 2:
            time.sleep(0.01)
        time.sleep(0.3)  # the rate is sampled every 0.2 s here
        submitted = time.monotonic()
        job = stub.SubmitDocument(api_world.submit_request(), metadata=auth, timeout=60)
        queued.append(job.job_id)
        announced_s = job.expected_wait_ms / 1000
        assert job.queue_position > 0
        polled = stub.GetJob(stamping_pb2.GetJobRequest(job_id=job.job_id), metadata=auth)
        while job.job_id not in done:
            time.sleep(0.01)
        waited_s = done[job.job_id] - submitted
    finally:
        stop.set()
        worker.join(10)
    assert 0.5 <= announced_s / waited_s <= 2.0, (announced_s, waited_s, job.queue_position)
    assert 0 < polled.expected_wait_ms / 1000 <= announced_s * 1.5
