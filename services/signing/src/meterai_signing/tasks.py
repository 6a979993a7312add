"""Celery tasks of the signing workers: thin wrappers over :class:`Signer`.

Tasks carry ids and a digest, never documents, and are idempotent (signing twice yields two
valid CMS for the same digest; the stamping service keeps the first), so late acks and
redelivery after a worker crash are safe.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from meterai_common.tasks import SIGN_DIGEST_TASK
from meterai_signing.errors import SigningUnavailable
from meterai_signing.signer import Signer

__all__ = ["register_tasks"]


def register_tasks(app: Celery, signer: Callable[[], Signer]) -> None:
    # An absent token or timestamp authority is retried with backoff (up to 30 s apart) for
    # about ten minutes; past that the stamping service's re-drive keeps the job alive until
    # its deadline.
    @app.task(
        name=SIGN_DIGEST_TASK,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(SigningUnavailable,),
        retry_backoff=1,
        retry_backoff_max=30,
        retry_jitter=True,
        max_retries=25,
    )
    def sign_digest(job_id: str, serial: str, digest: str) -> None:
        signer().sign_and_announce(job_id, serial, digest)
