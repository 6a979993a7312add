"""Process entry points for the quota concurrency tests and benchmark-style load.

They live in their own module so ``multiprocessing`` (spawn) can import them in a fresh
interpreter; each process builds its own engine, as a separate service replica would.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import meterai_quota as quota
from meterai_common.db import create_engine, run_in_transaction

__all__ = ["hold_many"]


def hold_many(url: str, owner_id: str, count: int) -> list[str]:
    """Hold ``count`` units for fresh jobs, one transaction each; return the serials."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        serials = []
        for _ in range(count):
            job_id = f"proc-{uuid.uuid4().hex}"
            serials.append(
                run_in_transaction(
                    engine,
                    lambda conn, job_id=job_id: quota.hold(
                        conn,
                        owner_id=owner_id,
                        reseller_id=owner_id,
                        job_id=job_id,
                        now=datetime.now(UTC),
                    ),
                )
            )
        return serials
    finally:
        engine.dispose()
