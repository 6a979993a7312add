"""The webhook tables (migration 0009): endpoints, the delivery log, its attempts, and the
batches whose "done" event is still to be decided."""

from __future__ import annotations

import sqlalchemy as sa

from meterai_quota.adapters.tables import UtcDateTime

__all__ = ["attempts", "deliveries", "endpoints", "metadata", "open_batches"]

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("reseller_id", sa.String(36), nullable=False, index=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    # The current signing secret (``whsec_…``); kept because HMAC needs it in clear.
    sa.Column("secret", sa.String(100), nullable=False),
    sa.Column("previous_secret", sa.String(100)),
    sa.Column("previous_expires_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    # Order of creation: a job's events are sent in this order.
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("endpoint_id", sa.String(36), nullable=False),
    sa.Column("reseller_id", sa.String(36), nullable=False),
    sa.Column("message_id", sa.String(60), nullable=False),
    # What the event is (``job.done:<job id>``): one delivery per endpoint and event, however
    # often the broker redelivers the announcement.
    sa.Column("event_key", sa.String(200), nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    # The job or batch: events of one subject are delivered one after the other, in order.
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("last_status", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("delivered_at", UtcDateTime()),
    sa.UniqueConstraint("endpoint_id", "event_key", name="uq_webhook_delivery_event"),
    sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "seq"),
    sa.Index("ix_webhook_deliveries_subject", "subject"),
)

attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(36), nullable=False, index=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    # HTTP status; 0 when no answer came (refused, reset, timed out).
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error", sa.String(500), nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

open_batches = sa.Table(
    "webhook_open_batches",
    metadata,
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("reseller_id", sa.String(36), nullable=False),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
)
