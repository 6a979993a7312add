"""The signing worker's Celery consumer: Celery's own, without native delayed delivery.

Celery 5.5+ adds a ``DelayedDelivery`` step to every worker whose queues are quorum queues.
It declares ``celery_delayed_*`` exchanges and queues on each broker URL at every (re)connect,
so that tasks with a countdown can wait in the broker; but it serves only topic and fanout
exchanges, and the ``signing`` exchange is direct, so our retries (``autoretry_for`` with
backoff, see :mod:`meterai_signing.tasks`) never go through it: Celery keeps them in the
worker until they are due, as it says in its warning. The step was pure cost, and one that
stopped the worker: it tries every listed URL with 1, 3 and 5 s pauses before the consumer
starts, so a worker that lost the node listed first in ``AMQP_URL`` consumed nothing for 17 s
after reconnecting to a survivor (measured in ``bench/cpns_day.py``).
"""

from __future__ import annotations

from celery import Celery
from celery.worker.consumer import Consumer as CeleryConsumer

__all__ = ["DELAYED_DELIVERY_STEP", "Consumer", "use_worker_consumer"]

DELAYED_DELIVERY_STEP = "celery.worker.consumer.delayed_delivery:DelayedDelivery"


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer with every default step but native delayed delivery."""

    class Blueprint(CeleryConsumer.Blueprint):  # type: ignore[misc]
        default_steps = [
            step for step in CeleryConsumer.Blueprint.default_steps if step != DELAYED_DELIVERY_STEP
        ]


def use_worker_consumer(app: Celery) -> None:
    """Make ``app``'s workers run :class:`Consumer`."""
    app.conf.worker_consumer = f"{Consumer.__module__}:{Consumer.__qualname__}"
