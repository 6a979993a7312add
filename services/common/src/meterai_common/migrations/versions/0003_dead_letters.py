"""Dead letters and re-drive: what the signing tier gave up on, kept for the operator.

``jobs.source_size`` is the length of the uploaded document, which is the prefix of the prepared
one (an incremental update), so a dead-lettered job can be re-driven from the original bytes
without storing them twice.

Revision ID: 0003_dead_letters
Revises: 0002_jobs
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_dead_letters"
down_revision: str | None = "0002_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("source_size", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("redriven_from", sa.String(36), nullable=True))
    op.create_table(
        "dead_letters",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("message_key", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("source_queue", sa.String(100), nullable=False),
        sa.Column("routing_key", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("redriven_at", _TS, nullable=True),
        sa.Column("redriven_as", sa.String(36), nullable=True),
        sa.UniqueConstraint("message_key", name="uq_dead_letters_message"),
    )
    op.create_index("ix_dead_letters_job", "dead_letters", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_job", table_name="dead_letters")
    op.drop_table("dead_letters")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("redriven_from")
        batch.drop_column("source_size")
