"""StampingService servicer: translates protobuf to commands and domain errors to statuses."""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import grpc

from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai_common import tracing
from meterai_common.deadlines import ensure_call_alive
from meterai_common.grpc_errors import RequestError, status_from_errors
from meterai_common.logs import log_context
from meterai_common.proto_time import timestamp
from meterai_common.request_ids import require_uuid
from meterai_stamping.admission import Admission, Overloaded
from meterai_stamping.batches import Batch, BatchBook, jobs_of, progress
from meterai_stamping.cancellation import cancel_job
from meterai_stamping.domain.jobs import (
    DocumentFacts,
    Job,
    JobState,
    Placement,
    SubmitDocument,
    verify_url,
)
from meterai_stamping.drain_rate import DrainRate
from meterai_stamping.early_refusal import cleared_at_edge, refuse
from meterai_stamping.handlers import Stamping
from meterai_stamping.job_updates import QUEUED_REFRESH_S, SAFETY_REFRESH_S, JobUpdates

__all__ = ["StampingServicer", "job_to_proto"]

_STATES = {state: getattr(stamping_pb2, f"JOB_STATE_{state.value}") for state in JobState}
SUBMIT_FIELDS = {
    "NOT_A_PDF": "pdf",
    "MALFORMED_PDF": "pdf",
    "PAGE_OUT_OF_RANGE": "placement.page",
    "RECT_OUTSIDE_PAGE": "placement.rect",
    "RECT_TOO_SMALL": "placement.rect",
}
"""The request field each PDF-engine refusal is about (its messages speak of the document)."""
BATCH_SLOTS = 1
"""Batches one stamping server takes at once. A batch holds one of the server's few threads
for as long as its documents stream in (and are paced): the others stay free for single
submissions, so one reseller's batch cannot take the whole server."""
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def job_to_proto(job: Job, base_url: str, position: tuple[int, int] = (0, 0)) -> stamping_pb2.Job:
    return stamping_pb2.Job(
        job_id=job.job_id,
        state=_STATES[job.state],
        serial=job.serial or "",
        filename=job.filename,
        failure_code=job.failure_code or "",
        failure_reason=job.failure_reason or "",
        refunded=job.refunded,
        created_at=timestamp(job.created_at),
        updated_at=timestamp(job.updated_at),
        queue_position=position[0],
        expected_wait_ms=position[1],
        document_digest=job.digest or "",
        stamped_size=job.stamped_size or 0,
        verify_url=verify_url(base_url, job.serial) if job.serial else "",
    )


class StampingServicer(stamping_pb2_grpc.StampingServiceServicer):
    """:param before_commit: called right before a submission's deadline check, inside its
    transaction (tests slow a call down with it to prove the check)."""

    def __init__(
        self,
        stamping: Stamping,
        authenticate: Callable[[grpc.ServicerContext], Any],
        admission: Admission,
        verify_base_url: str,
        *,
        watch_poll_s: float = 0.1,
        before_commit: Callable[[], None] = lambda: None,
        drain: DrainRate | None = None,
        updates: JobUpdates | None = None,
        batches: BatchBook | None = None,
        batch_slots: int = BATCH_SLOTS,
    ) -> None:
        """
        :param drain: the measured drain rate that turns a queue position into
            ``expected_wait_ms``; without one, the service layer's estimate.
        :param updates: the "job ended" announcements that wake ``WatchJob`` streams; without
            them, streams read their job every ``watch_poll_s``.
        :param batches: where batches are submitted and kept; without it, the batch methods
            answer UNIMPLEMENTED.
        :param batch_slots: batches this server takes at once; more are refused with retry
            advice.
        """
        self._batch_slots = threading.BoundedSemaphore(batch_slots)
        self._updates = updates
        self._batches = batches
        self._before_commit = before_commit
        self._drain = drain
        self._stamping = stamping
        self._auth = authenticate
        self._admission = admission
        self._base_url = verify_base_url
        self._watch_poll_s = watch_poll_s
        self.stopping = _Stopping(updates)
        """Set on shutdown: open WatchJob streams end with the job's latest state."""

    def _proto(self, job: Job) -> stamping_pb2.Job:
        position = self._stamping.queue_position(job)
        if self._drain is not None and job.state is JobState.PREPARED:
            position = (position[0], self._drain.expected_wait_ms(position[0]))
        return job_to_proto(job, self._base_url, position)

    def _waiting_behind(self, ahead: int) -> tuple[int, int]:
        if self._drain is None:
            return self._stamping.wait_for(ahead)
        return ahead, self._drain.expected_wait_ms(ahead)

    def SubmitDocument(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request, fields=SUBMIT_FIELDS):
            started = datetime.now(UTC)
            principal = self._auth(context)
            tracing.annotate(reseller_id=principal.reseller_id)
            command = _command(request, principal)
            try:
                self._admission.admit(principal.reseller_id, platform_cleared=cleared_at_edge())
            except Overloaded as refused:
                refuse(context, refused)
            # A caller that is gone gets no PDF work; one that goes during it, no charge.
            ensure_call_alive(context)

            def before_commit() -> None:
                self._before_commit()
                ensure_call_alive(context)

            with log_context(reseller=principal.reseller_id):
                job = self._stamping.submit(command, before_commit=before_commit)
            tracing.annotate(job_id=job.job_id, serial=job.serial or "")
            if _utc(job.created_at) < started:
                # Made by an earlier call with this key: say so, the client was not charged.
                answer = self._proto(job)
                answer.replayed = True
                return answer
            # A new job is at the back of the queue: the sampled backlog is its position,
            # no count query on the hot path.
            ahead = self._admission.backlog()
            return job_to_proto(job, self._base_url, self._waiting_behind(ahead))

    def GetJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            principal = self._auth(context)
            require_uuid(request.job_id, "job_id")
            return self._proto(self._stamping.get(principal.reseller_id, request.job_id))

    def WatchJob(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with status_from_errors(context, request):
            principal = self._auth(context)
            require_uuid(request.job_id, "job_id")
            last: tuple[Any, ...] | None = None
            while context.is_active():
                mark = self._updates.mark() if self._updates is not None else 0
                job = self._stamping.get(principal.reseller_id, request.job_id)
                message = self._proto(job)
                seen = (job.state, message.queue_position)
                if seen != last:
                    last = seen
                    yield message
                if job.terminal or self.stopping.is_set():
                    return
                if self._updates is None:
                    self.stopping.wait(self._watch_poll_s)
                    continue
                queued = message.queue_position > 0
                refresh_s = QUEUED_REFRESH_S if queued else SAFETY_REFRESH_S
                self._updates.wait(job.job_id, mark, refresh_s)

    def GetStampedDocument(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with status_from_errors(context, request):
            principal = self._auth(context)
            require_uuid(request.job_id, "job_id")
            for piece in self._stamping.stamped_document(principal.reseller_id, request.job_id):
                yield stamping_pb2.DocumentChunk(data=piece)

    def CancelJob(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            principal = self._auth(context)
            require_uuid(request.job_id, "job_id")
            return self._proto(cancel_job(self._stamping, principal.reseller_id, request.job_id))

    def SubmitBatch(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            principal = self._auth(context)
            book = self._batch_book()
            if not self._batch_slots.acquire(blocking=False):
                refuse(
                    context,
                    Overloaded(
                        "this server is taking another batch now",
                        2000,
                        "batches",
                        reason="BATCHES_BUSY",
                    ),
                )
            try:
                return self._submit_batch(book, principal, request_iterator, context)
            finally:
                self._batch_slots.release()

    def _submit_batch(
        self,
        book: BatchBook,
        principal: Any,
        request_iterator: Iterator[Any],
        context: grpc.ServicerContext,
    ) -> Any:
        stream = iter(request_iterator)
        first = next(stream, None)
        if first is None:
            raise RequestError(
                "INVALID_ARGUMENT", "the batch is empty: stream at least one document"
            )

        def documents() -> Iterator[tuple[str, Callable[[], SubmitDocument]]]:
            for message in itertools.chain([first], stream):
                yield (
                    message.document.filename or "document.pdf",
                    functools.partial(_command, message.document, principal),
                )

        batch = book.submit(
            principal.reseller_id,
            first.idempotency_key,
            documents(),
            time_left=context.time_remaining,
        )
        return self._batch_proto(batch)

    def GetBatch(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            principal = self._auth(context)
            require_uuid(request.batch_id, "batch_id")
            return self._batch_proto(
                self._batch_book().get(principal.reseller_id, request.batch_id)
            )

    def WatchBatch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with status_from_errors(context, request):
            principal = self._auth(context)
            require_uuid(request.batch_id, "batch_id")
            book = self._batch_book()
            last: tuple[int, ...] | None = None
            while context.is_active():
                mark = self._updates.mark() if self._updates is not None else 0
                message = self._batch_proto(book.get(principal.reseller_id, request.batch_id))
                seen = (message.done, message.failed)
                if seen != last:
                    last = seen
                    yield message
                if message.complete or self.stopping.is_set():
                    return
                if self._updates is None:
                    self.stopping.wait(self._watch_poll_s)
                else:
                    self._updates.wait_any(mark, SAFETY_REFRESH_S)

    def _batch_book(self) -> BatchBook:
        if self._batches is None:
            raise RequestError("UNIMPLEMENTED", "batches are not enabled on this server")
        return self._batches

    def _batch_proto(self, batch: Batch) -> stamping_pb2.Batch:
        jobs = jobs_of(lambda job_id: self._stamping.get(batch.reseller_id, job_id), batch)
        counts = progress(jobs, batch)
        return stamping_pb2.Batch(
            batch_id=batch.batch_id,
            items=[
                stamping_pb2.BatchItem(
                    index=item.index,
                    filename=item.filename,
                    job=job_to_proto(jobs[item.job_id], self._base_url)
                    if item.job_id in jobs
                    else None,
                    error_code=item.error_code,
                    error_reason=item.error_reason,
                    error_message=item.error_message,
                )
                for item in batch.items
            ],
            total=counts.total,
            accepted=counts.accepted,
            refused=counts.refused,
            done=counts.done,
            failed=counts.failed,
            complete=counts.complete,
        )

    def ListJobs(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context, request):
            principal = self._auth(context)
            size = _page_size(request.page_size)
            try:
                jobs, token = self._stamping.list(
                    principal.reseller_id, size, request.page_token or None
                )
            except ValueError as error:
                raise RequestError("INVALID_ARGUMENT", str(error)) from None
            return stamping_pb2.ListJobsResponse(
                jobs=[job_to_proto(job, self._base_url) for job in jobs],
                next_page_token=token or "",
            )


class _Stopping(threading.Event):
    """The servicer's shutdown flag; setting it also wakes every waiting watch stream."""

    def __init__(self, updates: JobUpdates | None) -> None:
        super().__init__()
        self._updates = updates

    def set(self) -> None:
        super().set()
        if self._updates is not None:
            self._updates.close()


def _utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC time: SQLite gives back the naive UTC time it was stored
    as, PostgreSQL an aware one, and a replay compares it with the call's aware start."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _page_size(requested: int) -> int:
    if requested < 0:
        raise RequestError("INVALID_ARGUMENT", "page_size must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _command(request: Any, principal: Any) -> SubmitDocument:
    if not request.HasField("placement") or not request.placement.HasField("rect"):
        raise RequestError(
            "INVALID_ARGUMENT",
            "placement with page and rect is required: where should the seal go?",
        )
    rect = request.placement.rect
    raw_date = request.metadata.document_date
    try:
        document_date = date.fromisoformat(raw_date) if raw_date else None
    except ValueError:
        raise RequestError(
            "INVALID_ARGUMENT", f"metadata.document_date must be YYYY-MM-DD, got {raw_date!r}"
        ) from None
    return SubmitDocument(
        reseller_id=principal.reseller_id,
        owner_id=principal.quota_owner_id,
        pdf=request.pdf,
        placement=Placement(request.placement.page, rect.x0, rect.y0, rect.x1, rect.y1),
        facts=DocumentFacts(
            document_type=request.metadata.document_type,
            document_number=request.metadata.document_number,
            document_date=document_date,
            document_value_idr=request.metadata.document_value_idr,
        ),
        idempotency_key=request.idempotency_key,
        filename=request.filename or "document.pdf",
        password=request.password or None,
    )
