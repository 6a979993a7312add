"""Index quota transactions by owner and kind, so a balance sums an owner's refunds by reading
its release transactions instead of every entry of its history.

Revision ID: 0005_transaction_owner_kind
Revises: 0004_documents
Create Date: 2025-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005_transaction_owner_kind"
down_revision: str | None = "0004_documents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_transaction_owner_kind", "quota_transactions", ["owner_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_transaction_owner_kind", table_name="quota_transactions")
