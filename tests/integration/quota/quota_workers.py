"""Process entry points for the quota concurrency tests and benchmark-style load.

They live in their own module so ``multiprocessing`` (spawn) can import them in a fresh
interpreter; each process builds its own engine, as a separate service replica would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

import meterai_quota as quota
from meterai_common.db import create_engine, run_in_transaction

__all__ = ["hold_many"]


def _hold_fresh_job(owner_id: str) -> Callable[[Connection], str]:
    job_id = f"proc-{uuid.uuid4().hex}"
    return lambda conn: quota.hold(
        conn, owner_id=owner_id, reseller_id=owner_id, job_id=job_id, now=datetime.now(UTC)
    )


def hold_many(url: str, owner_id: str, count: int) -> list[str]:
    """Hold ``count`` units for fresh jobs, one transaction each; return the serials."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        serials = []
        for _ in range(count):
            serials.append(run_in_transaction(engine, _hold_fresh_job(owner_id)))
        return serials
    finally:
        engine.dispose()
