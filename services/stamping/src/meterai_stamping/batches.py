"""Batches: many documents in one call, one answer per document, one key for the lot.

A batch is its documents' jobs, nothing more: document ``i`` of the batch with key ``K`` is
submitted with the idempotency key ``batch:<batch id>:<i>``, and the batch id is derived from
the reseller and ``K``. So sending a batch again (after a dropped connection, or to retry what
was refused) replays every document already accepted (no second charge) and submits only the
others; the quota, the ledger and the signing queue see ordinary submissions, admitted and
paid one by one.

What a batch adds is its list: which document became which job, and why a refused one was
refused. That manifest is kept as a small JSON record in the document store (area
``batches``), written when the stream ends.

While a batch streams in, each document goes through admission like any submission; a
refusal that asks to come back soon (the reseller's rate limit, a busy platform) is waited
out in the call, within its deadline and at most ``MAX_PACING_S`` in all, and then recorded
as that document's refusal, so a huge batch is paced instead of flooding the platform, and
what did not fit is resubmitted with the same key.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

import grpc

from meterai_common.documents import DocumentNotFound, DocumentStore
from meterai_common.grpc_errors import reason_of
from meterai_stamping.admission import Overloaded
from meterai_stamping.domain.jobs import Job, JobNotFound, JobState, SubmitDocument

__all__ = [
    "MAX_PACING_S",
    "BatchBook",
    "BatchItem",
    "BatchNotFound",
    "batch_id_of",
    "document_key",
]

AREA = "batches"
MAX_PACING_S = 30.0
"""Longest a batch call waits, in all, for admission to let its documents in."""
_NAMESPACE = uuid.UUID("6f1c2a8e-0b7d-4b8e-9a59-6d2f0d1e7a31")


class BatchNotFound(Exception):
    code = "NOT_FOUND"
    reason = "BATCH_NOT_FOUND"


class MissingBatchKey(Exception):
    code = "INVALID_ARGUMENT"
    reason = "INVALID_SUBMISSION"
    field = "idempotency_key"


def batch_id_of(reseller_id: str, key: str) -> str:
    """The same batch for the same reseller and key; never another reseller's."""
    return str(uuid.uuid5(_NAMESPACE, f"{reseller_id}\n{key}"))


def document_key(batch_id: str, index: int) -> str:
    return f"batch:{batch_id}:{index}"


@dataclass(frozen=True)
class BatchItem:
    """One document of a batch: its job, or the refusal."""

    index: int
    filename: str
    job_id: str = ""
    error_code: str = ""
    error_reason: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class Batch:
    batch_id: str
    reseller_id: str
    items: tuple[BatchItem, ...]


class BatchBook:
    """Submits batches and keeps their manifests.

    :param submit: submits one document as an ordinary job (the service layer's ``submit``).
    :param admit: raises :class:`Overloaded` when the reseller's next document must wait.
    :param sleep: waits (tests pass a fake clock's).
    """

    def __init__(
        self,
        store: DocumentStore,
        submit: Callable[[SubmitDocument], Job],
        admit: Callable[[str], None],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._submit = submit
        self._admit = admit
        self._sleep = sleep

    def submit(
        self,
        reseller_id: str,
        key: str,
        documents: Iterable[tuple[str, Callable[[], SubmitDocument]]],
        *,
        time_left: Callable[[], float | None] = lambda: None,
    ) -> Batch:
        """Submit every document of the stream; the manifest is kept once the stream ends.

        :param documents: per document, its file name and what builds its command (raising
            if the request is malformed: that document is refused, the others go on); the
            command's ``idempotency_key`` is replaced by the document's own.
        :param time_left: seconds until the call's deadline (None: no deadline); pacing
            never waits past it.
        """
        if not key:
            raise MissingBatchKey(
                "idempotency_key is required in the first message: the batch's key"
            )
        batch_id = batch_id_of(reseller_id, key)
        items: list[BatchItem] = []
        paced = 0.0
        for index, (filename, build) in enumerate(documents):
            try:
                command = _with_key(build(), document_key(batch_id, index))
            except Exception as error:
                if not _is_refusal(error):
                    raise
                items.append(_refusal(index, filename, error))
                continue
            while True:
                try:
                    self._admit(reseller_id)
                    job = self._submit(command)
                    items.append(BatchItem(index, command.filename, job_id=job.job_id))
                    break
                except Overloaded as refused:
                    wait_s = refused.pushback_ms / 1000
                    left = time_left()
                    if paced + wait_s > MAX_PACING_S or (left is not None and left < wait_s + 1):
                        items.append(_refusal(index, command.filename, refused))
                        break
                    self._sleep(wait_s)
                    paced += wait_s
                except Exception as error:
                    if not _is_refusal(error):
                        raise
                    items.append(_refusal(index, command.filename, error))
                    break
        batch = Batch(batch_id, reseller_id, tuple(items))
        self._store.put(AREA, batch_id, _encode(batch))
        return batch

    def get(self, reseller_id: str, batch_id: str) -> Batch:
        """The reseller's batch; another reseller's is not found, like a missing one."""
        try:
            batch = _decode(self._store.get(AREA, batch_id))
        except (DocumentNotFound, ValueError):
            raise BatchNotFound(f"no batch {batch_id} for this reseller") from None
        if batch.reseller_id != reseller_id:
            raise BatchNotFound(f"no batch {batch_id} for this reseller")
        return batch


def _with_key(command: SubmitDocument, key: str) -> SubmitDocument:
    return replace(command, idempotency_key=key)


def _is_refusal(error: Exception) -> bool:
    """A domain error naming a gRPC status (not a bug, nor a database error's own code)."""
    code = getattr(error, "code", None)
    return isinstance(code, str) and code in grpc.StatusCode.__members__ and code != "INTERNAL"


def _refusal(index: int, filename: str, error: Exception) -> BatchItem:
    return BatchItem(
        index,
        filename,
        error_code=str(getattr(error, "code", "INTERNAL")),
        error_reason=reason_of(error),
        error_message=str(error)[:500],
    )


def _encode(batch: Batch) -> bytes:
    return json.dumps(
        {
            "batch_id": batch.batch_id,
            "reseller_id": batch.reseller_id,
            "items": [asdict(item) for item in batch.items],
        }
    ).encode()


def _decode(data: bytes) -> Batch:
    raw = json.loads(data)
    return Batch(
        str(raw["batch_id"]),
        str(raw["reseller_id"]),
        tuple(BatchItem(**item) for item in raw["items"]),
    )


@dataclass(frozen=True)
class Progress:
    total: int
    accepted: int
    refused: int
    done: int
    failed: int
    complete: bool
    """Every accepted job has ended."""


def progress(jobs: dict[str, Job], batch: Batch) -> Progress:
    """Counts of a batch from its jobs' current states."""
    accepted = [item for item in batch.items if item.job_id]
    states = [jobs[item.job_id].state for item in accepted if item.job_id in jobs]
    done = sum(state is JobState.DONE for state in states)
    ended = sum(state in _ENDED for state in states)
    return Progress(
        total=len(batch.items),
        accepted=len(accepted),
        refused=len(batch.items) - len(accepted),
        done=done,
        failed=ended - done,
        complete=ended == len(accepted),
    )


_ENDED = (JobState.DONE, JobState.FAILED, JobState.DEAD_LETTERED)


def jobs_of(get: Callable[[str], Job], batch: Batch) -> dict[str, Job]:
    """The batch's jobs by id (a job that vanished is left out)."""
    found: dict[str, Job] = {}
    for item in batch.items:
        if item.job_id:
            try:
                found[item.job_id] = get(item.job_id)
            except JobNotFound:
                continue
    return found
