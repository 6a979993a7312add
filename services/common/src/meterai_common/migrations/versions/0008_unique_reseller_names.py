"""Reseller names are unique (without case and surrounding space), kept so by the database.

Until now only ``meterai admin create-reseller`` checked, in its own transaction, so two
operators creating "Toko Contoh" at the same instant both succeeded. Names are stored stripped
(``create_reseller`` strips them), so a unique index on ``lower(name)`` is the rule itself.
Rows that already share a name keep the oldest as it is; each later one gets its id appended
(``"Toko Contoh (3f2a…)"``), so the upgrade never fails on existing data and nothing is lost.

Revision ID: 0008_unique_reseller_names
Revises: 0007_audit_trail
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_unique_reseller_names"
down_revision: str | None = "0007_audit_trail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_quota_resellers_name"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, name FROM quota_resellers ORDER BY created_at, id")
    ).fetchall()
    seen: set[str] = set()
    for reseller_id, name in rows:
        key = name.strip().lower()
        if key in seen:
            renamed = f"{name.strip()[:180]} ({reseller_id})"
            conn.execute(
                sa.text("UPDATE quota_resellers SET name = :name WHERE id = :id"),
                {"name": renamed, "id": reseller_id},
            )
            key = renamed.lower()
        seen.add(key)
    op.create_index(INDEX, "quota_resellers", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="quota_resellers")
