"""Celery tasks of the signing workers: thin wrappers over :class:`Signer`.

Tasks carry ids and a digest, never documents, and are idempotent (signing twice yields two
valid CMS for the same digest; the stamping service keeps the first), so late acks and
redelivery after a worker crash are safe.

Sign requests travel in batches (:data:`SIGN_DIGESTS_TASK`). A batch delivered again was in
the hands of a worker that died or lost its connection; it may hold a poison document, one
that kills every worker taking it. Such a batch is not signed again as a whole: it is split
into one task per document, published before the batch is acknowledged, so a poison
document meets the queue's delivery limit alone and the others are signed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery

from meterai_common.messaging import CONFIRM_TIMEOUT_S, SIGNING_QUEUE
from meterai_common.tasks import SIGN_DIGEST_TASK, SIGN_DIGESTS_TASK
from meterai_signing.errors import SigningUnavailable
from meterai_signing.signer import Signer

__all__ = ["register_tasks", "split_on_redelivery"]

log = logging.getLogger(__name__)

_RETRIES: dict[str, Any] = {
    # An absent token or timestamp authority is retried with backoff (up to 30 s apart) for
    # about ten minutes; past that the stamping service's re-drive keeps the job alive until
    # its deadline.
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (SigningUnavailable,),
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 25,
}


def split_on_redelivery(items: list[dict[str, Any]], delivery_info: dict[str, Any] | None) -> bool:
    """Whether a batch must be split instead of signed: it holds more than one document and
    the broker delivers it again (a worker died or was cut off holding it)."""
    return len(items) > 1 and bool((delivery_info or {}).get("redelivered"))


def register_tasks(app: Celery, signer: Callable[[], Signer]) -> None:
    @app.task(name=SIGN_DIGEST_TASK, **_RETRIES)
    def sign_digest(job_id: str, serial: str, digest: str) -> None:
        """One document's request (tasks sent before batches existed, still in a queue)."""
        signer().sign_and_announce(job_id, serial, digest)

    @app.task(name=SIGN_DIGESTS_TASK, bind=True, **_RETRIES)
    def sign_digests(self: Any, items: list[dict[str, Any]]) -> None:
        if split_on_redelivery(items, self.request.delivery_info):
            log.warning("a batch of %d sign requests came back; splitting it", len(items))
            for item in items:
                app.send_task(
                    SIGN_DIGESTS_TASK,
                    kwargs={"items": [item]},
                    queue=SIGNING_QUEUE,
                    exchange=SIGNING_QUEUE,
                    routing_key=SIGNING_QUEUE,
                    confirm_timeout=CONFIRM_TIMEOUT_S,
                )
            return
        signer().sign_and_announce_many(items)
