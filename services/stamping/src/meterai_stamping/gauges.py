"""The platform's state as Prometheus gauges, sampled by the stamping tier off the hot path.

Backlog and the age of its oldest job, the outbox not yet published, dead letters waiting for
an operator, ledger totals and (on RabbitMQ) the depth and consumers of each queue: each is a
query, so :class:`PlatformGauges` runs as a chore of the stamping service's
:class:`~meterai_common.runtime.Periodic` every few seconds, never per call. Every stamping
process samples the same database, so a dashboard takes ``max`` over them, not ``sum``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from meterai_common import metrics
from meterai_common.db import reading
from meterai_common.messaging import DEAD_LETTERS_QUEUE, SIGNING_QUEUE, STAMPING_EVENTS
from meterai_common.messaging import queue_depths as read_queue_depths
from meterai_common.outbox import oldest_pending_age, pending_count
from meterai_quota.adapters.tables import accounts
from meterai_quota.domain.ledger_rules import AccountKind
from meterai_stamping.adapters.dead_letters import dead_letters_table
from meterai_stamping.adapters.jobs_table import jobs_table
from meterai_stamping.domain.jobs import JobState

__all__ = ["QUEUES", "PlatformGauges"]

log = logging.getLogger(__name__)

QUEUES = (SIGNING_QUEUE, STAMPING_EVENTS.name, DEAD_LETTERS_QUEUE)
"""The queues whose depth is exported: the signing tier's work, its answers, the dead letters."""

_BACKLOG = select(func.count(), func.min(jobs_table.c.created_at)).where(
    jobs_table.c.state == JobState.PREPARED.value
)
_DEAD_LETTERS = (
    select(func.count())
    .select_from(dead_letters_table)
    .where(dead_letters_table.c.redriven_at.is_(None))
)
_LEDGER = select(accounts.c.kind, func.coalesce(func.sum(accounts.c.balance), 0)).group_by(
    accounts.c.kind
)


class PlatformGauges:
    """Sets the platform gauges of :mod:`meterai_common.metrics` from the database and broker.

    :param amqp_url: the broker whose queues are measured; None (in-process bus) measures none.
    """

    def __init__(self, db: Engine, amqp_url: str | None) -> None:
        self._db = db
        self._amqp_url = amqp_url
        self._broker_warned = False

    def sample(self) -> None:
        now = datetime.now(UTC)
        with reading(self._db) as conn:
            backlog, oldest = conn.execute(_BACKLOG).one()
            dead_letters = conn.execute(_DEAD_LETTERS).scalar_one()
            ledger = {kind: int(total) for kind, total in conn.execute(_LEDGER)}
        metrics.BACKLOG_JOBS.set(int(backlog))
        metrics.BACKLOG_OLDEST_AGE.set(_age(oldest, now))
        metrics.DEAD_LETTERS_PENDING.set(int(dead_letters))
        metrics.OUTBOX_PENDING.set(pending_count(self._db))
        metrics.OUTBOX_OLDEST_AGE.set(oldest_pending_age(self._db))
        # The issuer account holds minus everything ever purchased (double entry).
        metrics.LEDGER_UNITS.labels("purchased").set(-ledger.get(AccountKind.ISSUER.value, 0))
        for kind in (AccountKind.AVAILABLE, AccountKind.HELD, AccountKind.CONSUMED):
            metrics.LEDGER_UNITS.labels(kind.value).set(ledger.get(kind.value, 0))
        self._sample_queues()

    def _sample_queues(self) -> None:
        if self._amqp_url is None:
            return
        try:
            depths = read_queue_depths(self._amqp_url, QUEUES)
        except Exception as error:  # the database gauges are still worth having
            if not self._broker_warned:
                log.warning("queue depths not sampled: %s: %s", type(error).__name__, error)
                self._broker_warned = True
            return
        for depth in depths:
            if depth.messages >= 0:
                metrics.QUEUE_MESSAGES.labels(depth.name).set(depth.messages)
                metrics.QUEUE_CONSUMERS.labels(depth.name).set(depth.consumers)


def _age(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite keeps no zone; the platform writes UTC
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())
