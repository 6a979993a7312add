"""Cancelling a job: a reseller takes back a document not signed yet, and its unit.

A job waiting for its signature ends FAILED with ``failure_code`` CANCELLED and its hold
released in the same commit (:meth:`Stamping.fail`, the refund every failed stamp gets). A
signing answer that arrives afterwards changes nothing: finishing only moves a job that is
still PREPARED. A signed job (DONE) has a serial issued against the document: it cannot be
taken back, and the refusal says so.
"""

from __future__ import annotations

from meterai_stamping.domain.jobs import Job, JobState
from meterai_stamping.handlers import Stamping

__all__ = ["CANCELLED", "JobAlreadySigned", "cancel_job"]

CANCELLED = "CANCELLED"
"""``failure_code`` of a cancelled job."""


class JobAlreadySigned(Exception):
    """The job is DONE: its serial was issued, there is nothing to cancel or refund."""

    code = "FAILED_PRECONDITION"
    reason = "JOB_ALREADY_SIGNED"


def cancel_job(stamping: Stamping, reseller_id: str, job_id: str) -> Job:
    """Cancel the reseller's job if it is not signed yet; a job that already ended another
    way is returned as it is (cancelling twice is harmless)."""
    job = stamping.get(reseller_id, job_id)
    if job.state is not JobState.DONE and not job.terminal:
        stamping.fail(
            job_id,
            CANCELLED,
            "cancelled by the reseller before signing; the quota unit was refunded",
        )
        job = stamping.get(reseller_id, job_id)
    if job.state is JobState.DONE:
        raise JobAlreadySigned(
            f"job {job_id} is already signed (serial {job.serial}): a signed stamp cannot be "
            "cancelled or refunded"
        )
    return job
