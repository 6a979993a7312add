"""The stamping service layer on a real database (SQLite and PostgreSQL): a job either ends
DONE with its unit consumed and serial issued, or FAILED / DEAD_LETTERED with its unit refunded —
whatever order and however often the signing tier's messages arrive."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

import meterai_quota as quota
from meterai.events.v1 import events_pb2
from meterai_common.db import create_engine, run_in_transaction
from meterai_common.documents import DirectoryStore, DocumentNotFound
from meterai_signing.cms import SigningIdentity, load_identity, sign_digest, signature_size
from meterai_signing.pki import generate_test_pki
from meterai_stamping import engine as pdf_engine
from meterai_stamping.adapters.dead_letters import DeadLetter
from meterai_stamping.domain.jobs import (
    DocumentFacts,
    JobNotFound,
    JobState,
    Placement,
    SubmitDocument,
)
from meterai_stamping.handlers import Stamping, StampingConfig
from tests.unit.stamping.samples import build_pdf

DOCUMENT = build_pdf()


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    pki = generate_test_pki(tmp_path_factory.mktemp("pki"))
    return load_identity(pki.signer_key, pki.chain)


@dataclass
class World:
    db: Engine
    stamping: Stamping
    clock: list[datetime]
    owner: str

    def submit(self, key: str | None = None) -> str:
        job = self.stamping.submit(
            SubmitDocument(
                reseller_id=self.owner,
                owner_id=self.owner,
                pdf=DOCUMENT,
                placement=Placement(1, 300, 60, 440, 200),
                facts=DocumentFacts("Surat Pernyataan"),
                idempotency_key=key or str(uuid.uuid4()),
            )
        )
        return job.job_id

    def balance(self) -> quota.Balance:
        with self.db.connect() as conn:
            return quota.balance(conn, self.owner)

    def reconciled(self) -> bool:
        with self.db.connect() as conn:
            return quota.reconcile(conn).ok


@pytest.fixture
def world(database_url: str, tmp_path: Path, identity: SigningIdentity) -> Iterator[World]:
    db = create_engine(database_url)
    clock = [datetime.now(UTC)]
    stamping = Stamping(
        db,
        DirectoryStore(tmp_path / "documents"),
        StampingConfig(
            verify_base_url="https://verify.example/v",
            limits=pdf_engine.Limits(),
            signature_size=lambda: signature_size(identity),
            signer_certificate=lambda: identity.certificates[0].dump(),
        ),
        clock=lambda: clock[0],
    )

    yield World(db, stamping, clock, _funded_reseller(db))
    db.dispose()


def _funded_reseller(db: Engine) -> str:
    """A new reseller with two paid units."""

    def fund(conn: object) -> str:
        reseller = quota.create_reseller(conn, f"handlers test {uuid.uuid4().hex[:8]}")  # type: ignore[arg-type]
        order = quota.purchase(conn, reseller.id, 2, "fund")  # type: ignore[arg-type]
        quota.confirm_payment(conn, order.id, f"pay-{reseller.id}", order.total_idr)  # type: ignore[arg-type]
        return reseller.id

    return run_in_transaction(db, fund)


def _signed(world: World, job_id: str, identity: SigningIdentity) -> None:
    job = world.stamping.get(world.owner, job_id)
    assert job.serial and job.digest
    world.stamping.digest_signed(
        job_id, job.serial, sign_digest(identity, bytes.fromhex(job.digest))
    )


def test_a_signed_job_is_done_once_with_its_serial_issued(
    world: World, identity: SigningIdentity
) -> None:
    job_id = world.submit()
    assert world.balance().held == 1
    _signed(world, job_id, identity)
    _signed(world, job_id, identity)  # a redelivered answer changes nothing
    job = world.stamping.get(world.owner, job_id)
    assert job.state is JobState.DONE
    stamped = b"".join(world.stamping.stamped_document(world.owner, job_id))
    assert stamped.startswith(DOCUMENT)
    with world.db.connect() as conn:
        info = quota.verify_serial(conn, job.serial or "")
    assert info.status is quota.SerialStatus.ISSUED
    assert info.document_digest == job.digest
    balance = world.balance()
    assert (balance.available, balance.held, balance.consumed) == (1, 0, 1)
    assert world.reconciled()


def test_a_batch_of_answers_finishes_each_job_and_a_forged_answer_fails_alone(
    world: World, identity: SigningIdentity
) -> None:
    """Answers of two resellers in one batch, one of them forged and one repeated: the others
    are DONE, the forged one FAILED and refunded, and the batch delivered again changes
    nothing."""
    other = World(world.db, world.stamping, world.clock, _funded_reseller(world.db))
    jobs = [(w, w.stamping.get(w.owner, w.submit())) for w in (world, other, world, other)]
    answers = [
        (job.job_id, job.serial or "", sign_digest(identity, bytes.fromhex(job.digest or "")))
        for _, job in jobs
    ]
    forged = jobs[1][1]
    answers[1] = (forged.job_id, forged.serial or "", sign_digest(identity, b"\x07" * 32))
    batch = [*answers, answers[0]]  # the first job answered twice in the batch

    world.stamping.digests_signed(batch)
    world.stamping.digests_signed(batch)  # redelivered

    states = [w.stamping.get(w.owner, job.job_id) for w, job in jobs]
    assert [job.state for job in states] == [
        JobState.DONE,
        JobState.FAILED,
        JobState.DONE,
        JobState.DONE,
    ]
    assert states[1].refunded
    assert (world.balance().consumed, world.balance().held) == (2, 0)
    assert (other.balance().consumed, other.balance().available) == (1, 1)
    for w, job in jobs[:1] + jobs[2:]:
        assert b"".join(w.stamping.stamped_document(w.owner, job.job_id)).startswith(DOCUMENT)
    assert world.reconciled()


def test_answers_repeated_for_part_of_a_batch_finish_each_job_once(
    world: World, identity: SigningIdentity
) -> None:
    """Part of a batch answered twice, before and after the batch (a split redelivery, a lost
    confirm): each job is DONE once, its unit consumed once, its stamped file the first one."""
    jobs = [world.stamping.get(world.owner, world.submit()) for _ in range(2)]
    answers = [
        (job.job_id, job.serial or "", sign_digest(identity, bytes.fromhex(job.digest or "")))
        for job in jobs
    ]
    world.stamping.digests_signed(answers[:1])  # one answered alone before its batch
    first = b"".join(world.stamping.stamped_document(world.owner, jobs[0].job_id))
    world.stamping.digests_signed(answers)
    world.stamping.digests_signed(answers[1:])  # and the other after it
    assert {world.stamping.get(world.owner, job.job_id).state for job in jobs} == {JobState.DONE}
    assert b"".join(world.stamping.stamped_document(world.owner, jobs[0].job_id)) == first
    balance = world.balance()
    assert (balance.consumed, balance.held, balance.available) == (2, 0, 0)
    assert world.reconciled()


def test_a_dead_lettered_batch_sets_aside_each_of_its_jobs(world: World) -> None:
    first, second = world.submit(), world.submit()
    items = [{"job_id": job_id, "serial": "x", "digest": "y"} for job_id in (first, second)]
    body = json.dumps([[], {"items": items}, {}]).encode()
    world.stamping.dead_lettered("signing", "signing", body, "delivery limit")
    for job_id in (first, second):
        job = world.stamping.get(world.owner, job_id)
        assert job.state is JobState.DEAD_LETTERED and job.refunded
        assert len(_dead_letters_of(world, job_id)) == 1  # listed, so re-drivable, each
    assert world.balance().available == 2
    assert world.reconciled()


def test_a_dead_lettered_batch_sets_aside_only_the_jobs_it_still_holds_up(
    world: World, identity: SigningIdentity
) -> None:
    """A batch of answers reaches the dead letters after its other documents were finished one
    by one (``meterai_stamping/domain/answer_batches.py``): the finished job stays DONE and is
    not listed for the operator; the one left is set aside and refunded."""
    finished, stuck = world.submit(), world.submit()
    _signed(world, finished, identity)
    answers = events_pb2.SigningAnswers(
        signed=[
            events_pb2.DigestSigned(job_id=job_id, serial="x", cms=b"cms")
            for job_id in (finished, stuck)
        ]
    )
    world.stamping.dead_lettered(
        "stamping.events", "SigningAnswers", answers.SerializeToString(), "delivery limit"
    )
    assert world.stamping.get(world.owner, finished).state is JobState.DONE
    assert _dead_letters_of(world, finished) == []
    left = world.stamping.get(world.owner, stuck)
    assert left.state is JobState.DEAD_LETTERED and left.refunded
    assert len(_dead_letters_of(world, stuck)) == 1
    assert (world.balance().consumed, world.balance().held) == (1, 0)
    assert world.reconciled()


def test_the_finishing_rate_counts_documents_done_within_the_window(
    world: World, identity: SigningIdentity
) -> None:
    """What admission turns a wait limit into documents with (METERAI_BACKLOG_MAX_WAIT_MS)."""
    window, now = timedelta(seconds=10), world.clock[0]
    later = now + window + timedelta(seconds=1)

    def rate_at(moment: datetime) -> float:
        world.clock[0] = moment
        return world.stamping.finishing_rate(window)

    # Other tests share the database: compare with what was counted before this job.
    before, before_later = rate_at(now), rate_at(later)
    world.clock[0] = now
    _signed(world, world.submit(), identity)
    assert rate_at(now) == pytest.approx(before + 0.1)
    assert rate_at(later) == pytest.approx(before_later)  # out of the window by then


def test_a_replayed_submit_returns_the_same_job_and_holds_once(world: World) -> None:
    first = world.submit("same-key")
    assert world.submit("same-key") == first
    assert world.balance().held == 1


def test_signing_failure_fails_the_job_and_refunds(world: World) -> None:
    job_id = world.submit()
    world.stamping.fail(job_id, "INTERNAL", "signing failed: test")
    job = world.stamping.get(world.owner, job_id)
    assert job.state is JobState.FAILED and job.refunded
    assert world.balance().available == 2
    with world.db.connect() as conn:
        assert quota.verify_serial(conn, job.serial or "").status is quota.SerialStatus.VOID
    assert world.reconciled()


def test_an_answer_for_a_job_another_process_ended_delivers_nothing(
    world: World, identity: SigningIdentity, tmp_path: Path
) -> None:
    job_id = world.submit()
    job = world.stamping.get(world.owner, job_id)
    other_process = Stamping(
        world.db,
        DirectoryStore(tmp_path / "documents"),
        StampingConfig(
            verify_base_url="https://verify.example/v",
            limits=pdf_engine.Limits(),
            signature_size=lambda: signature_size(identity),
            signer_certificate=lambda: identity.certificates[0].dump(),
        ),
    )
    celery_body = json.dumps([[], {"job_id": job_id, "serial": "x", "digest": "y"}, {}]).encode()
    other_process.dead_lettered("signing", "signing", celery_body, "delivery limit")

    # Its prepared file is kept for a re-drive, so the answer gets as far as the commit.
    _signed(world, job_id, identity)

    ended = world.stamping.get(world.owner, job_id)
    assert ended.state is JobState.DEAD_LETTERED and ended.refunded
    with pytest.raises(DocumentNotFound):
        DirectoryStore(tmp_path / "documents").size("stamped", job_id)
    assert world.balance().available == 2
    with world.db.connect() as conn:
        assert quota.verify_serial(conn, job.serial or "").status is quota.SerialStatus.VOID
    assert world.reconciled()


def test_an_answer_carrying_another_serial_changes_nothing(
    world: World, identity: SigningIdentity, tmp_path: Path
) -> None:
    job_id = world.submit()
    job = world.stamping.get(world.owner, job_id)
    assert job.digest
    cms = sign_digest(identity, bytes.fromhex(job.digest))

    world.stamping.digest_signed(job_id, "X" * 22, cms)
    world.stamping.digest_signed(job_id, "X" * 22, b"\x30" * 100_000)  # does not even fit

    assert world.stamping.get(world.owner, job_id).state is JobState.PREPARED
    with pytest.raises(DocumentNotFound):
        DirectoryStore(tmp_path / "documents").size("stamped", job_id)
    assert world.balance().held == 1
    world.stamping.digest_signed(job_id, job.serial or "", cms)  # the real answer still counts
    assert world.stamping.get(world.owner, job_id).state is JobState.DONE


def test_a_dead_lettered_task_refunds_and_can_be_redriven_as_a_new_job(
    world: World, identity: SigningIdentity
) -> None:
    job_id = world.submit()
    celery_body = json.dumps([[], {"job_id": job_id, "serial": "x", "digest": "y"}, {}]).encode()
    world.stamping.dead_lettered("signing", "signing", celery_body, "delivery limit")
    world.stamping.dead_lettered("signing", "signing", celery_body, "delivery limit")  # again
    old = world.stamping.get(world.owner, job_id)
    assert old.state is JobState.DEAD_LETTERED and old.refunded
    assert world.balance().available == 2
    (letter,) = _dead_letters_of(world, job_id)  # recorded once
    assert letter.reason == "delivery limit"

    new = world.stamping.redrive(job_id)
    assert new.job_id != job_id and new.serial != old.serial
    assert _dead_letters_of(world, job_id) == []
    _signed(world, new.job_id, identity)
    assert world.stamping.get(world.owner, new.job_id).state is JobState.DONE
    assert world.balance().consumed == 1
    assert world.reconciled()


def _dead_letters_of(world: World, job_id: str) -> list[DeadLetter]:
    """The pending dead letters of one job (the database is shared by this module's tests)."""
    return [letter for letter in world.stamping.dead_letters() if letter.job_id == job_id]


def test_a_job_past_its_deadline_fails_and_refunds(world: World) -> None:
    job_id = world.submit()
    world.clock[0] += timedelta(hours=2)
    world.stamping.redrive_stuck()
    job = world.stamping.get(world.owner, job_id)
    assert job.state is JobState.FAILED and job.failure_code == "DEADLINE_EXCEEDED"
    assert world.balance().available == 2
    assert world.reconciled()


def test_no_quota_charges_nothing_and_leaves_no_job(world: World) -> None:
    world.submit()
    world.submit()
    with pytest.raises(quota.InsufficientQuota):
        world.submit()
    jobs, _ = world.stamping.list(world.owner, 10, None)
    assert len(jobs) == 2
    assert world.reconciled()


def test_a_reseller_sees_only_its_own_jobs_and_documents(world: World) -> None:
    job_id = world.submit()
    with pytest.raises(JobNotFound):
        world.stamping.get("another-reseller", job_id)
    with pytest.raises(JobNotFound):
        world.stamping.stamped_document("another-reseller", job_id)
    jobs, _ = world.stamping.list("another-reseller", 10, None)
    assert jobs == []


def test_the_expected_wait_follows_the_recent_finishing_rate(
    world: World, identity: SigningIdentity
) -> None:
    world.clock[0] += timedelta(days=1)  # alone in the window, whatever else the database holds
    assert world.stamping.wait_for(9) == (9, 10 * 15)  # nothing finished yet: the assumed pace
    for _ in range(2):
        _signed(world, world.submit(), identity)
    fresh = Stamping(
        world.db,
        DirectoryStore(Path("/nonexistent")),
        StampingConfig(
            verify_base_url="https://verify.example/v",
            limits=pdf_engine.Limits(),
            signature_size=lambda: 0,
            signer_certificate=lambda: b"",
        ),
        clock=lambda: world.clock[0],
    )
    # Two documents in the last 60 s: one every 30 s, so a job with 9 ahead waits 300 s.
    assert fresh.wait_for(9) == (9, 300_000)


def test_a_signed_file_the_platform_could_not_verify_fails_and_refunds(
    world: World, identity: SigningIdentity, tmp_path: Path
) -> None:
    """The engine's self-check runs before the commit: a finished file whose new revision is
    broken (here: the form no longer lists the seal's field) is never delivered, even with a
    genuine signature over exactly those bytes."""
    job_id = world.submit()
    job = world.stamping.get(world.owner, job_id)
    store = DirectoryStore(tmp_path / "documents")
    prepared = store.get("prepared", job_id)
    at = prepared.rindex(b"/Fields [")
    broken = prepared[:at] + b"/Fielda [" + prepared[at + len(b"/Fields [") :]
    store.put("prepared", job_id, broken)
    start, end = pdf_engine.placeholder_of(broken)
    digest = hashlib.sha256(broken[: start - 1] + broken[end + 1 :]).digest()

    world.stamping.digest_signed(job_id, job.serial or "", sign_digest(identity, digest))

    ended = world.stamping.get(world.owner, job_id)
    assert ended.state is JobState.FAILED and ended.refunded
    assert "platform's own check" in (ended.failure_reason or "")
    with pytest.raises(DocumentNotFound):
        store.size("stamped", job_id)
    assert world.balance().available == 2
    assert world.reconciled()
