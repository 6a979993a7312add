"""The signer uses the key only for a job the stamping tier committed, and records each use."""

from __future__ import annotations

import hashlib
import logging

import pytest

from meterai.events.v1 import events_pb2
from meterai_signing.cms import SigningIdentity
from meterai_signing.job_check import OneByOne
from meterai_signing.signer import Signer

SERIAL = "0A1B2C3D4E5F6G7H8J9K0L"
DIGEST = hashlib.sha256(b"a prepared document").hexdigest()


class CommittedJob(OneByOne):
    """The one job the stamping tier committed and that still waits for its signature."""

    def __init__(self, job_id: str, serial: str, digest: str) -> None:
        self.job = (job_id, serial, digest)
        self.asked: list[tuple[str, str, str]] = []

    def awaiting(self, job_id: str, serial: str, digest_hex: str) -> bool:
        self.asked.append((job_id, serial, digest_hex))
        return (job_id, serial, digest_hex) == self.job


class Sink:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        self.published.append((routing_key, body))


def _signer(identity: SigningIdentity) -> tuple[Signer, Sink]:
    sink = Sink()
    return Signer(identity, CommittedJob("job-1", SERIAL, DIGEST), events=lambda: sink), sink


@pytest.mark.parametrize("key_type", ["ecdsa-p256"], indirect=True)
def test_signs_and_announces_a_committed_job_and_logs_the_signature(
    identity: SigningIdentity, caplog: pytest.LogCaptureFixture
) -> None:
    signer, sink = _signer(identity)
    with caplog.at_level(logging.INFO, logger="meterai.signatures"):
        signer.sign_and_announce("job-1", SERIAL, DIGEST)
    ((routing_key, body),) = sink.published
    assert routing_key == "DigestSigned"
    assert events_pb2.DigestSigned.FromString(body).serial == SERIAL
    assert f"signed job=job-1 serial={SERIAL} digest={DIGEST}" in caplog.text


@pytest.mark.parametrize("key_type", ["ecdsa-p256"], indirect=True)
@pytest.mark.parametrize(
    ("job_id", "serial", "digest"),
    [
        ("job-2", SERIAL, DIGEST),  # a job nobody committed
        ("job-1", "ZZZZZZZZZZZZZZZZZZZZZZ", DIGEST),  # another serial
        ("job-1", SERIAL, hashlib.sha256(b"SURAT HUTANG").hexdigest()),  # another digest
    ],
    ids=["unknown-job", "other-serial", "other-digest"],
)
def test_refuses_a_task_that_is_not_a_committed_job_and_announces_nothing(
    identity: SigningIdentity,
    caplog: pytest.LogCaptureFixture,
    job_id: str,
    serial: str,
    digest: str,
) -> None:
    signer, sink = _signer(identity)
    with caplog.at_level(logging.INFO, logger="meterai.signatures"):
        signer.sign_and_announce(job_id, serial, digest)
    assert sink.published == []
    assert f"refused to sign job={job_id}" in caplog.text
    assert "signed job=" not in caplog.text


class RefusingSink(Sink):
    """A broker whose queue has no leader for a while: it nacks the first publishes."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        if self.refusals:
            self.refusals -= 1
            raise RuntimeError("broker refused DigestSigned: nacked")
        super().publish(routing_key, body, message_id=message_id)


@pytest.mark.parametrize("key_type", ["ecdsa-p256"], indirect=True)
def test_an_answer_the_broker_refuses_for_a_while_is_announced_once_it_accepts(
    identity: SigningIdentity,
) -> None:
    sink = RefusingSink(refusals=6)  # 0.2 + 0.4 + 0.8 + 1.6 + 2 + 2 s: a leader election
    signer = Signer(identity, CommittedJob("job-1", SERIAL, DIGEST), events=lambda: sink)
    signer.sign_and_announce("job-1", SERIAL, DIGEST)
    assert [key for key, _ in sink.published] == ["DigestSigned"]


@pytest.mark.parametrize("key_type", ["ecdsa-p256"], indirect=True)
def test_an_answer_still_refused_after_the_patience_fails_the_task(
    identity: SigningIdentity,
) -> None:
    sink = RefusingSink(refusals=1000)
    signer = Signer(
        identity,
        CommittedJob("job-1", SERIAL, DIGEST),
        events=lambda: sink,
        publish_patience_s=0.5,
    )
    with pytest.raises(RuntimeError, match="refused"):
        signer.sign_and_announce("job-1", SERIAL, DIGEST)
    assert sink.published == []
