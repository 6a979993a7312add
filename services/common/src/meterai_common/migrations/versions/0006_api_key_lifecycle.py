"""API keys can be listed, expire after a rotation's grace period, and are recognisable by the
first characters of the key.

``prefix`` holds the first characters of the plaintext key (the rest stays known only to its
holder; the key is still stored as its SHA-256 only). Keys created before this revision have no
prefix. ``expires_at`` is set when a key is rotated: the old key works until then.

Revision ID: 0006_api_key_lifecycle
Revises: 0005_transaction_owner_kind
Create Date: 2025-01-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_api_key_lifecycle"
down_revision: str | None = "0005_transaction_owner_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("quota_api_keys", sa.Column("prefix", sa.String(12)))
    op.add_column("quota_api_keys", sa.Column("expires_at", _TS))
    op.create_index("ix_api_key_created", "quota_api_keys", ["created_at", "key_hash"])
    op.create_index(
        "ix_api_key_reseller_created", "quota_api_keys", ["reseller_id", "created_at", "key_hash"]
    )


def downgrade() -> None:
    op.drop_index("ix_api_key_reseller_created", table_name="quota_api_keys")
    op.drop_index("ix_api_key_created", table_name="quota_api_keys")
    with op.batch_alter_table("quota_api_keys") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("prefix")
