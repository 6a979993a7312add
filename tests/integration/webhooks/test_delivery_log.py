"""The delivery log on SQLite and PostgreSQL: announcements become one delivery per endpoint,
once; a job's events wait for each other; failures back off until dead; replay keeps the
webhook-id; secrets rotate with an overlap."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from meterai.events.v1 import events_pb2
from meterai_common.db import create_engine, reading, run_in_transaction
from meterai_common.documents import open_document_store
from meterai_webhooks import deliveries as log
from meterai_webhooks import endpoints as book
from meterai_webhooks.consumer import EventRecorder
from meterai_webhooks.errors import EndpointNotFound, InvalidEndpoint
from meterai_webhooks.signatures import headers_for

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples" / "webhooks"))
from verify import verify

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def _reseller() -> str:
    return str(uuid.uuid4())


def _endpoint(db: Engine, reseller: str, url: str = "https://receiver.example/hook") -> str:
    endpoint, _ = run_in_transaction(db, lambda c: book.create_endpoint(c, reseller, url))
    return endpoint.id


def _failed(job_id: str, reseller: str) -> bytes:
    return events_pb2.StampFailed(
        job_id=job_id,
        serial="",
        reseller_id=reseller,
        failure_code="CANCELLED",
        failure_reason="cancelled by the reseller",
    ).SerializeToString()


def _due(db: Engine, at: datetime, *endpoint_ids: str) -> list[log.Due]:
    """What is due at these endpoints (the PostgreSQL database is shared by the session)."""
    with reading(db) as conn:
        return [d for d in log.due(conn, at, limit=10_000) if d.endpoint_id in endpoint_ids]


def test_an_announcement_becomes_one_delivery_per_endpoint_once(db: Engine, tmp_path: Path) -> None:
    reseller, stranger = _reseller(), _reseller()
    first, second = _endpoint(db, reseller), _endpoint(db, reseller)
    _endpoint(db, stranger)
    recorder = EventRecorder(db, open_document_store(str(tmp_path), db), clock=lambda: NOW)
    job_id = str(uuid.uuid4())
    for _ in range(3):  # the broker may deliver an announcement again
        recorder("StampFailed", _failed(job_id, reseller), "m-1")
    with reading(db) as conn:
        logged = log.deliveries_of(conn, reseller)
        theirs = log.deliveries_of(conn, stranger)
    assert sorted(d.endpoint_id for d in logged) == sorted([first, second])
    assert {(d.event_type, d.subject, d.state) for d in logged} == {
        ("job.failed", job_id, log.PENDING)
    }
    assert theirs == []
    due = _due(db, NOW, first, second)
    assert len(due) == 2
    assert all('"failure_code":"CANCELLED"' in d.payload for d in due)
    assert all('"type":"job.failed"' in d.payload for d in due)


def test_a_jobs_later_event_waits_for_the_earlier_one(db: Engine) -> None:
    reseller = _reseller()
    endpoint = _endpoint(db, reseller)
    job_id = str(uuid.uuid4())
    for kind in ("job.failed", "job.done"):
        event = log.Event(kind, job_id, reseller, {"job_id": job_id}, NOW)
        run_in_transaction(db, lambda c, e=event: log.record_event(c, e))
    other = str(uuid.uuid4())
    event = log.Event("job.done", other, reseller, {"job_id": other}, NOW)
    run_in_transaction(db, lambda c: log.record_event(c, event))
    due = _due(db, NOW, endpoint)
    assert [(d.payload.count("job.failed"), other in d.payload) for d in due] == [
        (1, False),
        (0, True),
    ], "the second event of the job is held; another job is not"
    first = due[0]
    assert run_in_transaction(db, lambda c: log.claim(c, first, NOW, timedelta(seconds=30)))
    assert [d.id for d in _due(db, NOW, endpoint)] == [due[1].id], "in flight: still held"
    run_in_transaction(
        db,
        lambda c: log.record_outcome(
            c,
            first.id,
            at=NOW,
            status=204,
            error="",
            duration_ms=3,
            retry_after=None,
            max_attempts=5,
        ),
    )
    assert any(
        '"type":"job.done"' in d.payload and job_id in d.payload for d in _due(db, NOW, endpoint)
    )


def test_failures_back_off_until_dead_and_a_replay_keeps_the_webhook_id(db: Engine) -> None:
    reseller = _reseller()
    endpoint = _endpoint(db, reseller)
    job_id = str(uuid.uuid4())
    event = log.Event("job.done", job_id, reseller, {"job_id": job_id}, NOW)
    run_in_transaction(db, lambda c: log.record_event(c, event))
    at, states = NOW, []
    for _ in range(3):
        (item,) = _due(db, at, endpoint)
        assert run_in_transaction(db, lambda c, i=item, t=at: log.claim(c, i, t, timedelta(1)))
        states.append(
            run_in_transaction(
                db,
                lambda c, i=item, t=at: log.record_outcome(
                    c,
                    i.id,
                    at=t,
                    status=500,
                    error="HTTP 500",
                    duration_ms=2,
                    retry_after=timedelta(seconds=10),
                    max_attempts=3,
                ),
            )
        )
        assert _due(db, at, endpoint) == [], "backing off"
        at += timedelta(seconds=10)
    assert states == [log.PENDING, log.PENDING, log.DEAD]
    with reading(db) as conn:
        (dead,) = log.deliveries_of(conn, reseller, state=log.DEAD)
    assert (dead.attempts, dead.last_status) == (3, 500)
    replayed = run_in_transaction(
        db, lambda c: log.replay(c, reseller, at, endpoint_id=dead.endpoint_id)
    )
    assert replayed == 1
    (again,) = _due(db, at, endpoint)
    assert again.message_id == dead.message_id and again.attempts == 0
    with pytest.raises(InvalidEndpoint):
        run_in_transaction(db, lambda c: log.replay(c, reseller, at))
    assert (
        run_in_transaction(db, lambda c: log.replay(c, _reseller(), at, delivery_ids=[dead.id]))
        == 0
    ), "another reseller cannot replay it"


def test_plain_http_and_urls_with_credentials_are_refused_unless_allowed(db: Engine) -> None:
    reseller = _reseller()
    for url in ("http://receiver.example/hook", "https://user:pw@receiver.example/", "ftp://x/"):
        with pytest.raises(InvalidEndpoint):
            run_in_transaction(db, lambda c, u=url: book.create_endpoint(c, reseller, u))
    endpoint, secret = run_in_transaction(
        db,
        lambda c: book.create_endpoint(c, reseller, "http://127.0.0.1:9/hook", allow_http=True),
    )
    assert endpoint.url.startswith("http://") and secret.startswith("whsec_")


def test_another_resellers_endpoint_is_not_found(db: Engine) -> None:
    owner = _reseller()
    endpoint_id = _endpoint(db, owner)
    with pytest.raises(EndpointNotFound):
        run_in_transaction(db, lambda c: book.delete_endpoint(c, _reseller(), endpoint_id))
    with pytest.raises(InvalidEndpoint):
        run_in_transaction(db, lambda c: book.rotate_secret(c, owner, "not-an-id" * 50))


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(db: Engine) -> None:
    reseller = _reseller()
    endpoint, old = run_in_transaction(
        db, lambda c: book.create_endpoint(c, reseller, "https://receiver.example/hook")
    )
    _, new = run_in_transaction(
        db,
        lambda c: book.rotate_secret(c, reseller, endpoint.id, timedelta(hours=1), now=NOW),
    )
    job_id = str(uuid.uuid4())
    event = log.Event("job.done", job_id, reseller, {"job_id": job_id}, NOW)
    run_in_transaction(db, lambda c: log.record_event(c, event))
    (during,) = _due(db, NOW + timedelta(minutes=59), endpoint.id)
    assert during.secrets == (new, old)
    (after,) = _due(db, NOW + timedelta(minutes=61), endpoint.id)
    assert after.secrets == (new,)
    headers = headers_for(during.message_id, during.payload.encode(), during.secrets, NOW)
    sent = NOW.timestamp()
    assert verify(during.payload.encode(), headers, [old], now=sent)["data"]["job_id"] == job_id
    assert verify(during.payload.encode(), headers, [new], now=sent)["data"]["job_id"] == job_id
