"""A batch of sign requests is checked in one read, each document signed by itself, and
answered in one message; a batch the broker delivers again is split, one task per document."""

from __future__ import annotations

import hashlib

import pytest

from meterai.events.v1 import events_pb2
from meterai_common.messaging import Unroutable
from meterai_signing.cms import SigningIdentity
from meterai_signing.errors import SigningUnavailable
from meterai_signing.job_check import SignRequest
from meterai_signing.signer import Signer
from meterai_signing.tasks import split_on_redelivery

SERIALS = [f"0A1B2C3D4E5F6G7H8J9K{n:02d}" for n in range(4)]
DIGESTS = [hashlib.sha256(f"document {n}".encode()).hexdigest() for n in range(4)]
REQUESTS = [(f"job-{n}", SERIALS[n], DIGESTS[n]) for n in range(4)]


class Committed:
    """Jobs waiting for a signature; counts how often it was asked."""

    def __init__(self, requests: list[SignRequest]) -> None:
        self.requests = set(requests)
        self.reads = 0

    def awaiting(self, job_id: str, serial: str, digest_hex: str) -> bool:
        raise AssertionError("a batch is checked in one read, not one per document")

    def awaiting_among(self, requests: list[SignRequest]) -> set[SignRequest]:
        self.reads += 1
        return {request for request in requests if request in self.requests}


class Sink:
    def __init__(self, routes_batches: bool = True) -> None:
        self.routes_batches = routes_batches
        self.published: list[tuple[str, bytes, str]] = []

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        if routing_key == "SigningAnswers" and not self.routes_batches:
            raise Unroutable("no queue takes SigningAnswers")
        self.published.append((routing_key, body, message_id))


def _items(requests: list[SignRequest]) -> list[dict[str, object]]:
    return [{"job_id": j, "serial": s, "digest": d} for j, s, d in requests]


@pytest.mark.parametrize("key_type", ["ecdsa-p256"], indirect=True)
def test_a_batch_is_checked_once_signed_per_document_and_answered_in_one_message(
    identity: SigningIdentity,
) -> None:
    jobs, sink = Committed(REQUESTS[:3]), Sink()
    signer = Signer(identity, jobs, events=lambda: sink)
    forged = ("job-9", SERIALS[3], DIGESTS[3])
    bad_digest = ("job-3", SERIALS[3], "not hex")
    jobs.requests.add(bad_digest)
    signer.sign_and_announce_many(_items([*REQUESTS[:3], forged, bad_digest]))
    assert jobs.reads == 1
    ((routing_key, body, message_id),) = sink.published
    assert routing_key == "SigningAnswers"
    assert message_id.startswith("answers-")
    answers = events_pb2.SigningAnswers.FromString(body)
    assert [(a.job_id, a.serial) for a in answers.signed] == [(j, s) for j, s, _ in REQUESTS[:3]]
    assert all(len(a.cms) > 100 for a in answers.signed)
    assert [f.job_id for f in answers.failed] == ["job-3"]  # refused: job-9 gets no answer


@pytest.mark.parametrize("key_type", ["ecdsa-p256"], indirect=True)
def test_a_batch_of_one_is_answered_as_a_single_event(identity: SigningIdentity) -> None:
    sink = Sink()
    Signer(identity, Committed(REQUESTS), events=lambda: sink).sign_and_announce_many(
        _items(REQUESTS[:1])
    )
    assert [(key, mid) for key, _, mid in sink.published] == [("DigestSigned", "signed-job-0")]


@pytest.mark.parametrize("key_type", ["ecdsa-p256"], indirect=True)
def test_a_broker_without_batch_answers_gets_each_answer_by_itself(
    identity: SigningIdentity,
) -> None:
    sink = Sink(routes_batches=False)
    Signer(identity, Committed(REQUESTS), events=lambda: sink).sign_and_announce_many(
        _items(REQUESTS)
    )
    assert [key for key, _, _ in sink.published] == ["DigestSigned"] * 4
    signed = [events_pb2.DigestSigned.FromString(body).job_id for _, body, _ in sink.published]
    assert signed == [job_id for job_id, _, _ in REQUESTS]


def test_only_a_redelivered_batch_of_several_documents_is_split() -> None:
    two = _items(REQUESTS[:2])
    assert split_on_redelivery(two, {"redelivered": True})
    assert not split_on_redelivery(two, {"redelivered": False})
    assert not split_on_redelivery(two, None)
    # A single document meets the delivery limit as it is.
    assert not split_on_redelivery(two[:1], {"redelivered": True})


@pytest.mark.parametrize("key_type", ["ecdsa-p256"], indirect=True)
def test_an_unavailable_key_mid_batch_announces_what_was_signed_and_asks_for_a_retry(
    identity: SigningIdentity, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = Sink()
    signer = Signer(identity, Committed(REQUESTS), events=lambda: sink)
    sign = signer.sign

    def token_gone_at_the_third(job_id: str, serial: str, digest: bytes) -> bytes:
        if job_id == "job-2":
            raise SigningUnavailable("the token went away")
        return sign(job_id, serial, digest)

    monkeypatch.setattr(signer, "sign", token_gone_at_the_third)
    with pytest.raises(SigningUnavailable):
        signer.sign_and_announce_many(_items(REQUESTS))
    ((routing_key, body, _),) = sink.published
    assert routing_key == "SigningAnswers"
    answers = events_pb2.SigningAnswers.FromString(body)
    assert [a.job_id for a in answers.signed] == ["job-0", "job-1"]
