"""The signing tier signs only what the stamping tier committed.

A sign task names a job, its serial and the digest of its prepared document. Before the key is
used, the signer looks that triple up among the jobs still waiting for a signature: a task
published by anyone else (a broker credential is not a licence to sign), a replay for a job
that ended, or a digest that differs from the one committed, is refused and logged, and no
signature is made. The lookup is one primary-key read, on a read-only connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import sqlalchemy as sa

__all__ = ["CommittedJobs", "DatabaseJobs", "OneByOne", "SignRequest"]

SignRequest = tuple[str, str, str]
"""(job id, serial, hex digest) of one document to sign."""

_AWAITING = sa.text(
    "SELECT 1 FROM jobs WHERE job_id = :job_id AND serial = :serial AND digest = :digest "
    "AND state = 'PREPARED'"
)
_AWAITING_AMONG = sa.text(
    "SELECT job_id, serial, digest FROM jobs WHERE job_id IN :job_ids AND state = 'PREPARED'"
).bindparams(sa.bindparam("job_ids", expanding=True))


class CommittedJobs(Protocol):
    """Where the signer checks that a sign task stands for a job the platform committed."""

    def awaiting(self, job_id: str, serial: str, digest_hex: str) -> bool:
        """True if job ``job_id`` was committed with this serial and digest and still waits
        for its signature."""
        ...

    def awaiting_among(self, requests: Sequence[SignRequest]) -> set[SignRequest]:
        """The requests of a batch that :meth:`awaiting` accepts, asked at once."""
        ...


class OneByOne:
    """``awaiting_among`` by asking :meth:`awaiting` for each request (for small stores)."""

    def awaiting(self, job_id: str, serial: str, digest_hex: str) -> bool:
        raise NotImplementedError

    def awaiting_among(self, requests: Sequence[SignRequest]) -> set[SignRequest]:
        return {request for request in requests if self.awaiting(*request)}


class DatabaseJobs:
    """:class:`CommittedJobs` on the platform database.

    The engine is opened per process (lazily, after Celery's prefork pool forked), because a
    connection pool must not be shared across a fork.
    """

    def __init__(self, open_engine: Callable[[], sa.Engine]) -> None:
        """:param open_engine: opens this process's engine (called again after a fork)."""
        self._open = open_engine
        self._engine: sa.Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _db(self) -> sa.Engine:
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                self._engine = self._open()
                self._pid = os.getpid()
            return self._engine

    def awaiting(self, job_id: str, serial: str, digest_hex: str) -> bool:
        with self._db().connect() as conn:
            row = conn.execute(
                _AWAITING, {"job_id": job_id, "serial": serial, "digest": digest_hex.lower()}
            ).first()
        return row is not None

    def awaiting_among(self, requests: Sequence[SignRequest]) -> set[SignRequest]:
        """One read for a whole batch: the jobs that wait, compared with what was asked."""
        if not requests:
            return set()
        with self._db().connect() as conn:
            rows = conn.execute(_AWAITING_AMONG, {"job_ids": sorted({r[0] for r in requests})})
            committed = {(row.job_id, row.serial, row.digest) for row in rows}
        return {r for r in requests if (r[0], r[1], r[2].lower()) in committed}
