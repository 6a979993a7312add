"""``WatchJob`` is pushed, not polled: a stream learns that its job ended as soon as the
platform announces it, and while nothing happens it does not read the database ten times a
second (it looks again once a second while its job is queued, every 5 s otherwise)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from meterai.stamping.v1 import stamping_pb2
from tests.integration.api.conftest import ApiWorld

IDLE_S = 3.0


def test_a_watch_hears_its_job_end_at_once_and_reads_little_meanwhile(
    api_world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = api_world.stamping_stub()
    auth = api_world.reseller.auth
    job = stub.SubmitDocument(api_world.submit_request(), metadata=auth, timeout=60)
    reads = []
    real_get = api_world.stamping.get

    def counted(reseller_id: str, job_id: str) -> Any:
        reads.append(time.monotonic())
        return real_get(reseller_id, job_id)

    monkeypatch.setattr(api_world.stamping, "get", counted)
    updates: list[tuple[float, Any]] = []

    def watch() -> None:
        for update in stub.WatchJob(
            stamping_pb2.WatchJobRequest(job_id=job.job_id), metadata=auth, timeout=30
        ):
            updates.append((time.monotonic(), update))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(IDLE_S)
    idle_reads = len(reads)
    signed_at = time.monotonic()
    api_world.sign(job.job_id)
    watcher.join(10)
    assert not watcher.is_alive()
    assert updates[-1][1].state == stamping_pb2.JOB_STATE_DONE
    assert updates[-1][0] - signed_at < 0.5
    # One read to start, then at most one a second while queued: polling every 100 ms read
    # about thirty times in the same spell.
    assert idle_reads <= IDLE_S + 2, idle_reads
