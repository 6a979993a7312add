"""The Celery application shared by task senders (stamping) and the signing workers.

Both sides build the app from the same function so queue names, serialisation and delivery
guarantees cannot drift apart. Settings keep the README's delivery guarantees: late acks with
reject-on-worker-lost (a killed worker's task is redelivered, never lost), prefetch 1 (a slow
signature does not strand tasks behind it), publisher confirms (a send returns only once the
broker has the task), a quorum queue with a delivery limit and dead-lettering, JSON only, no
result backend (results travel back as domain events), no ETA tasks.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from meterai_common.messaging import CONFIRM_TIMEOUT_S, SIGNING_QUEUE, quorum_arguments

__all__ = ["SIGN_DIGESTS_TASK", "SIGN_DIGEST_TASK", "CeleryTaskSender", "make_celery"]

SIGN_DIGEST_TASK = "meterai.signing.sign_digest"
"""One document's sign request: the outbox row each accepted job writes (kwargs ``job_id``,
``serial``, ``digest``)."""
SIGN_DIGESTS_TASK = "meterai.signing.sign_digests"
"""What the relays send: the sign requests of up to a batch of documents in one task (kwargs
``items``, a list of :data:`SIGN_DIGEST_TASK` kwargs), so the broker, Celery and the worker
pay their per-message cost once per batch."""


def make_celery(amqp_url: str) -> Celery:
    app = Celery("meterai", broker=amqp_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=SIGNING_QUEUE,
        task_queues=[
            # Declared by ``ensure_topology`` (or the operator), never by Celery: a service's
            # broker user may not configure anything (``meterai_common.broker_users``).
            Queue(
                SIGNING_QUEUE,
                Exchange(SIGNING_QUEUE, type="direct", durable=True, no_declare=True),
                routing_key=SIGNING_QUEUE,
                queue_arguments=quorum_arguments(),
                durable=True,
                no_declare=True,
            )
        ],
        task_routes={
            SIGN_DIGEST_TASK: {"queue": SIGNING_QUEUE},
            SIGN_DIGESTS_TASK: {"queue": SIGNING_QUEUE},
        },
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=30,
        task_time_limit=120,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_max_tasks_per_child=10_000,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # Remote control needs a reply queue per worker (the *configure* permission); the
        # operator's view is `meterai admin queues`, not `celery inspect`.
        worker_enable_remote_control=False,
        task_send_sent_event=False,
    )
    return app


class CeleryTaskSender:
    """Sends tasks by name, so the sender never imports the worker's code."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def send(self, task_name: str, kwargs: dict[str, Any]) -> None:
        self._app.send_task(
            task_name,
            kwargs=kwargs,
            queue=SIGNING_QUEUE,
            # Named, not left to Celery: without it the task goes through the default
            # exchange, which would let any publisher reach any queue by name.
            exchange=SIGNING_QUEUE,
            routing_key=SIGNING_QUEUE,
            # A confirm that does not come is a connection error to kombu: it reconnects
            # (to the next node) and publishes again, instead of waiting without end.
            confirm_timeout=CONFIRM_TIMEOUT_S,
            retry=True,
            retry_policy={
                "max_retries": 3,
                "interval_start": 0.2,
                "interval_step": 0.5,
                "interval_max": 2,
            },
        )
