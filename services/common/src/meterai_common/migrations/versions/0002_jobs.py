"""Stamping jobs and the transactional outbox.

A job row, its quota hold and its outbox message commit in one transaction (G1); the UNIQUE
``(reseller_id, idempotency_key)`` makes a concurrent duplicate submit lose at the database
rather than create a second job (G3), and UNIQUE ``serial`` backs G5.

Revision ID: 0002_jobs
Revises: 0001_ledger
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_jobs"
down_revision: str | None = "0001_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("reseller_id", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("serial", sa.String(22), nullable=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("rect", sa.String(200), nullable=False),
        sa.Column("document_type", sa.String(100), nullable=False),
        sa.Column("document_number", sa.String(100), nullable=False),
        sa.Column("document_date", sa.String(10), nullable=True),
        sa.Column("document_value_idr", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("contents_start", sa.BigInteger, nullable=True),
        sa.Column("contents_end", sa.BigInteger, nullable=True),
        sa.Column("stamped_size", sa.BigInteger, nullable=True),
        sa.Column("failure_code", sa.String(40), nullable=True),
        sa.Column("failure_reason", sa.Text, nullable=True),
        sa.Column("refunded", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("reseller_id", "idempotency_key", name="uq_jobs_reseller_key"),
        sa.UniqueConstraint("serial", name="uq_jobs_serial"),
        sa.CheckConstraint(
            "state IN ('ACCEPTED','HELD','PREPARED','SIGNED','DONE','FAILED','DEAD_LETTERED')",
            name="ck_jobs_state",
        ),
    )
    op.create_index("ix_jobs_state_updated", "jobs", ["state", "updated_at"])
    op.create_index("ix_jobs_reseller_created", "jobs", ["reseller_id", "created_at"])
    op.create_table(
        "outbox",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("published_at", _TS, nullable=True),
        sa.CheckConstraint("kind IN ('task','event')", name="ck_outbox_kind"),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_jobs_reseller_created", table_name="jobs")
    op.drop_index("ix_jobs_state_updated", table_name="jobs")
    op.drop_table("jobs")
