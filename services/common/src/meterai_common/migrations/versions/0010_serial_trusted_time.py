"""An issued serial records the trusted time of its seal: the ``genTime`` an RFC 3161 timestamp
authority certified in the signature timestamp token (PAdES B-T and above).

``issued_at`` is the platform's own clock at finishing; ``trusted_time`` is a third party's
statement of when the signature existed, read from the token the seal carries. It is NULL for a
B-B seal (no token) and for every serial issued before this revision.

Revision ID: 0010_serial_trusted_time
Revises: 0009_webhooks
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_serial_trusted_time"
down_revision: str | None = "0009_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: PostgreSQL adds it without rewriting the table.
    op.add_column("quota_serials", sa.Column("trusted_time", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("quota_serials") as batch:
        batch.drop_column("trusted_time")
