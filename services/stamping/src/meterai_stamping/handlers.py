"""Stamping service layer: one method per command or event, each one transaction.

* :meth:`Stamping.submit` prepares the seal and signature placeholder, then commits the job row,
  the quota hold and the "sign this digest" outbox message together: all or nothing.
* :meth:`Stamping.digest_signed` embeds the CMS from the signing tier and commits the quota unit
  (serial issued, linked to the document digest) with the job's DONE state.
* :meth:`Stamping.signing_failed` fails the job and releases its hold: a failed stamp refunds
  itself.

Every handler is idempotent, because messages may arrive more than once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

import meterai_quota as ledger
from meterai.events.v1 import events_pb2
from meterai_common import metrics, tracing
from meterai_common.db import reading, run_in_transaction, transaction
from meterai_common.documents import DocumentNotFound, DocumentStore
from meterai_common.logs import log_context
from meterai_common.outbox import enqueue_event, enqueue_task
from meterai_common.tasks import SIGN_DIGEST_TASK
from meterai_quota import generate_serial as new_serial
from meterai_stamping import engine as pdf_engine
from meterai_stamping.adapters.dead_letters import DeadLetter, DeadLetterRepository
from meterai_stamping.adapters.jobs_table import JobRepository
from meterai_stamping.answer_check import ForgedAnswer, check_answer, signature_timestamp_time
from meterai_stamping.domain.jobs import (
    IdempotencyConflict,
    Job,
    JobNotFound,
    JobNotReady,
    JobState,
    SubmitDocument,
    seal_reason,
    submission_fingerprint,
    validate_submission,
    verify_url,
)
from meterai_stamping.ltv import LongTermRefused, RevocationUnavailable

__all__ = ["Stamping", "StampingConfig"]


def _jobs_of_dead_letter(routing_key: str, body: bytes) -> list[str]:
    """The jobs a dead-lettered message is about: an answer's, or a sign task's (one
    document's, or each of a batch's)."""
    try:
        if routing_key == "DigestSigned":
            return _present([events_pb2.DigestSigned.FromString(body).job_id])
        if routing_key == "SigningFailed":
            return _present([events_pb2.SigningFailed.FromString(body).job_id])
        if routing_key == "SigningAnswers":
            answers = events_pb2.SigningAnswers.FromString(body)
            return _present([a.job_id for a in answers.signed] + [f.job_id for f in answers.failed])
        decoded = json.loads(body)
        kwargs = decoded[1] if isinstance(decoded, list) and len(decoded) > 1 else {}
        if not isinstance(kwargs, dict):
            return []
        items = kwargs.get("items")
        requests = items if isinstance(items, list) else [kwargs]
        return _present(
            [str(item.get("job_id") or "") for item in requests if isinstance(item, dict)]
        )
    except (ValueError, TypeError, DecodeError):
        return []


def _present(job_ids: list[str]) -> list[str]:
    return [job_id for job_id in job_ids if job_id]


log = logging.getLogger(__name__)

QUOTA_HINT_S = 1.0
RATE_SAMPLE_S = 5.0
PREPARED = "prepared"
STAMPED = "stamped"

_Embedded = tuple[str, str, int, str, datetime | None]
"""A signed document embedded and stored, ready to finish: job id, serial, stamped size,
prepared digest (hex) and the trusted time of its signature timestamp (None for B-B)."""


@dataclass(frozen=True)
class StampingConfig:
    verify_base_url: str
    limits: pdf_engine.Limits
    signature_size: Callable[[], int]
    """Bytes the CMS may take; asked of the signing service, which alone knows the key."""
    signer_certificate: Callable[[], bytes]
    """DER of the platform signer's certificate: every signing answer must verify with it."""
    redrive_after: timedelta = timedelta(seconds=60)
    job_deadline: timedelta = timedelta(hours=1)
    """A job not signed within this time fails and is refunded rather than waiting forever."""
    expected_sign_ms: int = 15
    """Time per document assumed before any throughput has been observed."""
    throughput_window: timedelta = timedelta(seconds=60)
    """Recent completions over this window give the platform's current rate."""
    long_term: Callable[[bytes], bytes] | None = None
    """Adds the validation data (B-LT) and document timestamp (B-LTA) to a signed document
    (:func:`meterai_stamping.ltv.add_long_term_data`); ``None`` leaves it as signed."""


class Stamping:
    def __init__(
        self,
        engine: Engine,
        store: DocumentStore,
        config: StampingConfig,
        *,
        committed: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """
        :param committed: called after each commit that wrote outbox rows (wakes the relay).
        """
        self._db = engine
        self._store = store
        self._config = config
        self._committed = committed
        self._now = clock
        self._quota_hints: dict[str, tuple[float, int]] = {}
        self._rate_sample: tuple[float, float] = (float("-inf"), 0.0)

    # -- commands -------------------------------------------------------------------------
    def submit(
        self, command: SubmitDocument, *, before_commit: Callable[[], None] = lambda: None
    ) -> Job:
        """Accept a document: all or nothing, and at most once per idempotency key.

        A replay is recognised by the UNIQUE (reseller, key) constraint at commit rather than
        by a lookup first: replays are rare, a lookup on every submit is not.

        :param before_commit: called inside the transaction right before it commits; raising
            there (the caller's deadline passed, or it cancelled) leaves nothing written and
            nothing charged.
        """
        validate_submission(command)
        fingerprint = submission_fingerprint(command)
        try:
            self._check_quota_hint(command.owner_id)
        except ledger.InsufficientQuota:
            replay = self._replay(command, fingerprint)  # a replay is answered, paid or not
            if replay is None:
                raise
            return replay
        now = self._now()
        job_id = str(uuid.uuid4())
        serial = new_serial()
        placement = command.placement
        prepared = pdf_engine.prepare(
            command.pdf,
            page=placement.page,
            rect=pdf_engine.Rect(placement.x0, placement.y0, placement.x1, placement.y1),
            seal=pdf_engine.Seal(
                serial=serial, verify_url=verify_url(self._config.verify_base_url, serial)
            ),
            signature_size=self._config.signature_size(),
            signing_time=now,
            reason=seal_reason(serial),
            password=command.password,
            limits=self._config.limits,
        )
        self._store.put(PREPARED, job_id, prepared.data)
        facts = command.facts
        try:
            with transaction(self._db) as conn:
                JobRepository(conn).add(
                    {
                        "job_id": job_id,
                        "reseller_id": command.reseller_id,
                        "owner_id": command.owner_id,
                        "idempotency_key": command.idempotency_key,
                        "request_hash": fingerprint,
                        "state": JobState.PREPARED.value,
                        "serial": serial,
                        "filename": command.filename,
                        "page": placement.page,
                        "rect": f"{placement.x0},{placement.y0},{placement.x1},{placement.y1}",
                        "document_type": facts.document_type,
                        "document_number": facts.document_number,
                        "document_date": facts.document_date.isoformat()
                        if facts.document_date
                        else None,
                        "document_value_idr": facts.document_value_idr,
                        "digest": prepared.digest.hex(),
                        "contents_start": prepared.contents_start,
                        "contents_end": prepared.contents_end,
                        "refunded": False,
                        "attempts": 1,
                        "source_size": len(command.pdf),
                        "redriven_from": command.redriven_from,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                ledger.hold(
                    conn,
                    owner_id=command.owner_id,
                    reseller_id=command.reseller_id,
                    job_id=job_id,
                    serial=serial,
                    now=now,
                )
                request: dict[str, object] = {
                    "job_id": job_id,
                    "serial": serial,
                    "digest": prepared.digest.hex(),
                }
                trace_context = tracing.carrier_of_current()
                if trace_context:
                    request["trace"] = trace_context  # the signing worker continues the trace
                enqueue_task(conn, SIGN_DIGEST_TASK, request, now)
                before_commit()
        except IntegrityError:
            # The key was used before (a replay, or a concurrent duplicate that won): answer
            # as that submit did.
            self._store.delete(PREPARED, job_id)
            replay = self._replay(command, fingerprint)
            if replay is None:
                raise
            return replay
        except ledger.InsufficientQuota:
            self._store.delete(PREPARED, job_id)
            self._quota_hints[command.owner_id] = (time.monotonic(), 0)
            raise
        except BaseException:
            self._store.delete(PREPARED, job_id)
            raise
        self._committed()
        job = Job(
            job_id=job_id,
            reseller_id=command.reseller_id,
            owner_id=command.owner_id,
            state=JobState.PREPARED,
            serial=serial,
            filename=command.filename,
            facts=facts,
            created_at=now,
            updated_at=now,
            digest=prepared.digest.hex(),
            contents_start=prepared.contents_start,
            contents_end=prepared.contents_end,
            source_size=len(command.pdf),
            redriven_from=command.redriven_from,
        )
        return job

    def digest_signed(self, job_id: str, serial: str, cms: bytes) -> None:
        """Embed a signing answer and commit the stamp, once however often it arrives
        (:meth:`digests_signed` for one answer)."""
        self.digests_signed([(job_id, serial, cms)])

    def digests_signed(
        self,
        answers: Sequence[tuple[str, str, bytes]],
        traces: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Embed a batch of signing answers and commit their stamps in one transaction.

        :param traces: per job, the trace context its answer carried; its finishing is a span
            of that trace, and what is logged about the job carries the trace id.

        Reads no job row: the placeholder's offsets come from the prepared file itself and the
        facts the ledger needs from the guarded update that finishes the job, so the common
        case costs one transaction for the whole batch. Each job is finished inside its own
        savepoint: an answer the ledger or the digest check refuses fails that job alone
        (refunded), the others commit. A job that ended already has no prepared file left (or
        is not PREPARED at commit), and its answer changes nothing.
        """
        embedded: list[_Embedded] = []
        first: dict[str, tuple[str, bytes]] = {}
        for job_id, serial, cms in answers:
            first.setdefault(job_id, (serial, cms))  # a job answered twice: the first counts
        traces = traces or {}
        for job_id, (serial, cms) in first.items():
            with (
                tracing.span(
                    "finish stamp",
                    parent=traces.get(job_id),
                    attributes={"meterai.job_id": job_id, "meterai.serial": serial},
                ),
                log_context(job_id=job_id, serial=serial),
            ):
                done = self._embed(job_id, serial, cms)
            if done is not None:
                stamped, digest_hex, trusted_time = done
                self._store.put(STAMPED, job_id, stamped)
                embedded.append((job_id, serial, len(stamped), digest_hex, trusted_time))
        if not embedded:
            return
        outcomes = run_in_transaction(self._db, lambda conn: self._commit_done_all(conn, embedded))
        committed = False
        for job_id, serial, *_ in embedded:
            outcome = outcomes[job_id]
            if outcome is True:
                metrics.STAMPS_DONE.inc()
                self._store.delete(PREPARED, job_id)
                committed = True
            elif isinstance(outcome, ForgedAnswer):
                self._store.delete(STAMPED, job_id)
                log.warning(
                    "rejected the signing answer for job %s serial %s: %s", job_id, serial, outcome
                )
                self._fail_if_awaiting(
                    job_id,
                    serial,
                    "the signed document is not the one this job committed; the quota unit "
                    "was refunded",
                )
            elif isinstance(outcome, ledger.QuotaError):
                # The ledger refuses to issue (hold reaped, facts invalid): no retry can fix it.
                self._store.delete(STAMPED, job_id)
                self.fail(job_id, outcome.code, f"the stamp could not be issued: {outcome}")
            else:
                ended = self._get_any(job_id)
                if ended is None or ended.state is not JobState.DONE:
                    self._store.delete(STAMPED, job_id)  # it ended another way: nothing to deliver
                log.info(
                    "ignoring DigestSigned for job %s in state %s", job_id, ended and ended.state
                )
        if committed:
            self._committed()

    def _embed(
        self, job_id: str, serial: str, cms: bytes
    ) -> tuple[bytes, str, datetime | None] | None:
        """The stamped document, the prepared document's digest (hex) and the trusted time
        its signature timestamp certifies (None for B-B); None when the answer was dealt with
        here (the job failed, or waits for revocation data)."""
        try:
            prepared = self._store.get(PREPARED, job_id)
            start, end = pdf_engine.placeholder_of(prepared)
            digest = hashlib.sha256(prepared[: start - 1])
            digest.update(prepared[end + 1 :])
            check_answer(cms, digest.digest(), self._config.signer_certificate())
            trusted_time = signature_timestamp_time(cms)
            stamped = pdf_engine.embed_signature(prepared, start, end, cms)
            pdf_engine.check_stamped(stamped)  # never deliver what the verifier cannot read
            if self._config.long_term is not None:
                stamped = self._config.long_term(stamped)
        except RevocationUnavailable as error:
            # Like a TSA outage: the job stays PREPARED and is re-driven (signed and finished
            # again) until its deadline fails and refunds it.
            log.warning("job %s waits for revocation data: %s", job_id, error)
            return None
        except LongTermRefused as error:
            self._fail_if_awaiting(job_id, serial, str(error))
            return None
        except ForgedAnswer as error:
            log.warning(
                "rejected the signing answer for job %s serial %s: %s", job_id, serial, error
            )
            self._fail_if_awaiting(
                job_id,
                serial,
                "the signing answer was not the platform's signature over this document; "
                "the quota unit was refunded",
            )
            return None
        except (pdf_engine.StampError, DocumentNotFound) as error:
            self._fail_if_awaiting(job_id, serial, f"could not embed the signature: {error}")
            return None
        return stamped, digest.hexdigest(), trusted_time

    def _commit_done_all(
        self, conn: Connection, embedded: list[_Embedded]
    ) -> dict[str, bool | Exception]:
        """Finish each job in a savepoint of one transaction; per job: True (finished), False
        (not PREPARED with this serial: nothing written) or the error that refused it.

        Jobs are finished in the order of their owners: each takes its owner's ledger rows, and
        two batches that took them in opposite orders could deadlock each other.
        """
        owners = JobRepository(conn).owners_of([job_id for job_id, *_ in embedded])
        outcomes: dict[str, bool | Exception] = {}
        for job_id, serial, size, digest_hex, trusted_time in sorted(
            embedded, key=lambda item: (owners.get(item[0], ""), item[0])
        ):
            try:
                with conn.begin_nested():
                    outcomes[job_id] = self._commit_done(
                        conn, job_id, serial, size, digest_hex, trusted_time
                    )
            except (ForgedAnswer, ledger.QuotaError) as error:
                outcomes[job_id] = error
        return outcomes

    def _fail_if_awaiting(self, job_id: str, serial: str, reason: str) -> None:
        """Fail the job only if it still waits for this answer: an answer for a job that
        ended (its prepared file deleted) or for another serial must not end a live job."""
        job = self._get_any(job_id)
        if job is None or job.state is not JobState.PREPARED or job.serial != serial:
            log.info("ignoring DigestSigned for job %s in state %s", job_id, job and job.state)
            return
        self.fail(job_id, "INTERNAL", reason)

    def _commit_done(
        self,
        conn: Connection,
        job_id: str,
        serial: str,
        stamped_size: int,
        digest_hex: str,
        trusted_time: datetime | None = None,
    ) -> bool:
        """Finish the job; raises (and its savepoint rolls back) if the prepared document's
        digest is not the one the job committed (the file was changed under us)."""
        now = self._now()
        job = JobRepository(conn).finish_prepared(job_id, serial, now, stamped_size)
        if job is None:
            return False
        if job.digest != digest_hex:
            raise ForgedAnswer("the prepared document's digest differs from the job's")
        ledger.commit(
            conn,
            job_id=job_id,
            document_digest=job.digest,
            document_type=job.document_type,
            document_number=job.document_number,
            document_date=job.document_date,
            now=now,
            trusted_time=trusted_time,
        )
        event = events_pb2.DocumentStamped(
            job_id=job_id,
            serial=serial,
            reseller_id=job.reseller_id,
            document_digest=job.digest,
        )
        enqueue_event(conn, "DocumentStamped", event.SerializeToString(), now)
        return True

    def fail(self, job_id: str, code: str, reason: str, *, dead_lettered: bool = False) -> None:
        """End a job that cannot be stamped, releasing its hold (the refund) in the same commit."""
        now = self._now()
        with log_context(job_id=job_id), transaction(self._db) as conn:
            repo = JobRepository(conn)
            job = repo.get(job_id, for_update=True)
            if job is None or job.terminal:
                return
            ledger.release(conn, job_id=job_id, reason=reason[:200], now=now)
            state = JobState.DEAD_LETTERED if dead_lettered else JobState.FAILED
            repo.set_state(
                job_id,
                now,
                state=state.value,
                failure_code=code,
                failure_reason=reason,
                refunded=True,
            )
            event = events_pb2.StampFailed(
                job_id=job_id,
                serial=job.serial or "",
                reseller_id=job.reseller_id,
                failure_code=code,
                failure_reason=reason,
            )
            enqueue_event(conn, "StampFailed", event.SerializeToString(), now)
        metrics.STAMPS_FAILED.inc()
        metrics.STAMPS_REFUNDED.inc()
        if not dead_lettered:
            # A dead-lettered job keeps its prepared document: the operator may re-drive it.
            self._store.delete(PREPARED, job_id)
        self._committed()

    def dead_lettered(self, source_queue: str, routing_key: str, body: bytes, reason: str) -> None:
        """The broker gave up on a message about a job: record it, fail the job and refund.

        Sign tasks (``signing`` queue, Celery JSON body) and signing answers (protobuf events)
        name their jobs (a batch several); anything else is recorded for the operator without
        a job.
        """
        named = _jobs_of_dead_letter(routing_key, body)
        now = self._now()
        message_key = hashlib.sha256(routing_key.encode() + body).hexdigest()
        with transaction(self._db) as conn:
            # Only the jobs it still holds up: the others of a batch were finished one by one
            # before it came here (``domain.answer_batches``), and are not the operator's.
            repo = JobRepository(conn)
            job_ids = [j for j in named if (job := repo.get(j)) is not None and not job.terminal]
            if named and not job_ids:
                return
            # One record per job (a batch names several), so the operator lists and re-drives
            # each document by itself.
            for index, job_id in enumerate(job_ids or [None]):
                DeadLetterRepository(conn).record(
                    {
                        "message_key": message_key
                        if index == 0
                        else hashlib.sha256(f"{message_key}:{index}".encode()).hexdigest(),
                        "job_id": job_id,
                        "source_queue": source_queue[:100],
                        "routing_key": routing_key[:100],
                        "reason": reason,
                        "created_at": now,
                    }
                )
        for job_id in job_ids:
            self.fail(
                job_id,
                "UNAVAILABLE",
                "signing failed repeatedly and the job was set aside for the operator; "
                "the quota unit was refunded",
                dead_lettered=True,
            )

    def dead_letters(self, limit: int = 100, after_id: int = 0) -> list[DeadLetter]:
        with self._read() as conn:
            return DeadLetterRepository(conn).pending(limit, after_id)

    def redrive(self, job_id: str) -> Job:
        """Stamp a dead-lettered job's document again, as a new job with a new serial.

        The old job stays DEAD_LETTERED (its unit was refunded, its serial is void forever);
        the new one holds a fresh unit, so re-driving needs available quota like any stamp.
        """
        job = self._get_any(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        if job.state is not JobState.DEAD_LETTERED:
            raise JobNotReady(
                f"job {job_id} is {job.state.value}; only dead-lettered jobs re-drive"
            )
        if job.source_size is None:
            raise JobNotReady(f"job {job_id} predates re-drive support; submit it again")
        try:
            original = self._store.get(PREPARED, job_id)[: job.source_size]
        except DocumentNotFound:
            raise JobNotReady(f"the document of job {job_id} is no longer stored") from None
        with self._read() as conn:
            row = JobRepository(conn).placement_of(job_id)
        replacement = self.submit(
            SubmitDocument(
                reseller_id=job.reseller_id,
                owner_id=job.owner_id,
                pdf=original,
                placement=row,
                facts=job.facts,
                idempotency_key=f"redrive:{job_id}",
                filename=job.filename,
                redriven_from=job_id,
            )
        )
        with transaction(self._db) as conn:
            DeadLetterRepository(conn).mark_redriven(job_id, replacement.job_id, self._now())
        self._store.delete(PREPARED, job_id)
        return replacement

    def redrive_stuck(self) -> int:
        """Send the signing task again for prepared jobs that saw no answer in time.

        The job keeps its serial and prepared document; duplicates of the answer are ignored.
        """
        now = self._now()
        with self._read() as conn:
            expired = JobRepository(conn).stuck_since(
                JobState.PREPARED, now - self._config.job_deadline
            )
        for job in expired:
            self.fail(
                job.job_id,
                "DEADLINE_EXCEEDED",
                "the document could not be signed in time; the quota unit was refunded",
            )
        with transaction(self._db) as conn:
            repo = JobRepository(conn)
            stuck = repo.stuck(JobState.PREPARED, now - self._config.redrive_after)
            for job in stuck:
                enqueue_task(
                    conn,
                    SIGN_DIGEST_TASK,
                    {"job_id": job.job_id, "serial": job.serial, "digest": job.digest},
                    now,
                )
                repo.set_state(job.job_id, now)
        if stuck:
            log.warning("re-drove %d stuck jobs", len(stuck))
            self._committed()
        return len(stuck)

    # -- queries --------------------------------------------------------------------------
    def get(self, reseller_id: str, job_id: str) -> Job:
        job = self._get_any(job_id)
        if job is None or job.reseller_id != reseller_id:
            raise JobNotFound(f"no job {job_id} for this reseller")
        return job

    def list(
        self, reseller_id: str, page_size: int, page_token: str | None
    ) -> tuple[list[Job], str | None]:
        with self._read() as conn:
            return JobRepository(conn).page(reseller_id, page_size, page_token)

    def queue_position(self, job: Job) -> tuple[int, int]:
        """(jobs ahead, expected wait in ms) for a prepared job; (0, 0) otherwise."""
        if job.state is not JobState.PREPARED:
            return 0, 0
        with self._read() as conn:
            ahead = JobRepository(conn).queue_position(job)
        return self.wait_for(ahead)

    def wait_for(self, ahead: int) -> tuple[int, int]:
        """(jobs ahead, expected wait in ms) for a job with ``ahead`` jobs before it, from the
        rate at which the platform has been finishing documents lately."""
        per_s = self._recent_rate()
        if per_s <= 0:
            return ahead, (ahead + 1) * self._config.expected_sign_ms
        return ahead, int((ahead + 1) * 1000 / per_s)

    def finishing_rate(self, window: timedelta) -> float:
        """Documents finished per second over the last ``window`` (read now, not cached)."""
        with self._read() as conn:
            done = JobRepository(conn).finished_since(self._now() - window)
        return done / window.total_seconds()

    def _recent_rate(self) -> float:
        """Documents finished per second over the throughput window, sampled every 5 s."""
        now = time.monotonic()
        sampled_at, rate = self._rate_sample
        if now - sampled_at < RATE_SAMPLE_S:
            return rate
        self._rate_sample = (now, rate)  # concurrent callers keep the old value meanwhile
        rate = self.finishing_rate(self._config.throughput_window)
        self._rate_sample = (now, rate)
        return rate

    def backlog(self) -> int:
        with self._read() as conn:
            return JobRepository(conn).backlog()

    def inflight(self, reseller_id: str) -> int:
        with self._read() as conn:
            return JobRepository(conn).inflight(reseller_id)

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            return JobRepository(conn).count_by_state()

    def stamped_document(self, reseller_id: str, job_id: str) -> Iterator[bytes]:
        job = self.get(reseller_id, job_id)
        if job.state is not JobState.DONE:
            raise JobNotReady(
                f"job {job_id} is {job.state.value}, not DONE: nothing to download yet"
            )
        return self._store.chunks(STAMPED, job_id)

    def _read(self) -> Connection:
        return reading(self._db)

    def _check_quota_hint(self, owner_id: str) -> None:
        """Fail fast, before any PDF work, when the owner has no quota left.

        The hold in the submit transaction is what enforces quota; this only spares the work
        of preparing a document that cannot be paid for. A recent positive balance is trusted
        for a moment, so a busy reseller costs one balance query a second, not one a submit.
        """
        now = time.monotonic()
        hint = self._quota_hints.get(owner_id)
        if hint is not None and now - hint[0] < QUOTA_HINT_S and hint[1] > 0:
            return
        with self._read() as conn:
            available = ledger.available(conn, owner_id)
        if len(self._quota_hints) > 100_000:
            self._quota_hints.clear()
        self._quota_hints[owner_id] = (now, available)
        if available < 1:
            raise ledger.InsufficientQuota()

    def _get_any(self, job_id: str) -> Job | None:
        with self._read() as conn:
            return JobRepository(conn).get(job_id)

    def _replay(self, command: SubmitDocument, fingerprint: str) -> Job | None:
        with self._read() as conn:
            found = JobRepository(conn).find_by_key(command.reseller_id, command.idempotency_key)
        if found is None:
            return None
        job, request_hash = found
        if request_hash != fingerprint:
            raise IdempotencyConflict(
                f"idempotency_key {command.idempotency_key!r} was already used for a different "
                "document or placement; use a new key for a new document"
            )
        return job
