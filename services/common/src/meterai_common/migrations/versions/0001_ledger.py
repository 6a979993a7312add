"""Quota ledger: resellers, API keys, orders, double-entry accounts and serials.

Balances are cached on ``quota_accounts`` and updated in the same transaction as the entries, so
the floor at zero can be a CHECK constraint the database enforces, not a rule the code hopes to
follow. Serials are the primary key of ``quota_serials`` and job ids are UNIQUE there: a serial
can neither be issued twice nor reused after it was voided.

Revision ID: 0001_ledger
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_ledger"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quota_resellers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column(
            "parent_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_reseller_parent"),
        ),
        sa.Column(
            "root_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_reseller_root"),
            nullable=False,
        ),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "quota_api_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column(
            "reseller_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_api_key_reseller"),
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
        sa.CheckConstraint("role IN ('reseller', 'operator')", name="ck_api_key_role"),
        sa.CheckConstraint(
            "(role = 'operator' AND reseller_id IS NULL)"
            " OR (role = 'reseller' AND reseller_id IS NOT NULL)",
            name="ck_api_key_reseller_role",
        ),
    )
    op.create_table(
        "quota_accounts",
        sa.Column(
            "owner_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_account_owner"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "kind IN ('issuer', 'available', 'held', 'consumed')", name="ck_account_kind"
        ),
        sa.CheckConstraint(
            "(kind = 'issuer' AND balance <= 0) OR (kind <> 'issuer' AND balance >= 0)",
            name="ck_account_balance_sign",
        ),
    )
    op.create_table(
        "quota_orders",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "reseller_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_order_reseller"),
            nullable=False,
        ),
        sa.Column(
            "owner_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_order_owner"),
            nullable=False,
        ),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price_idr", sa.BigInteger, nullable=False),
        sa.Column("total_idr", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("payment_reference", sa.String(128)),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("paid_at", _TS),
        sa.Column("closed_at", _TS),
        sa.UniqueConstraint("reseller_id", "idempotency_key", name="uq_order_idempotency"),
        sa.UniqueConstraint("payment_reference", name="uq_order_payment_reference"),
        sa.CheckConstraint("quantity > 0", name="ck_order_quantity"),
        sa.CheckConstraint("total_idr = quantity * unit_price_idr", name="ck_order_total"),
        sa.CheckConstraint(
            "state IN ('AWAITING_PAYMENT', 'PAID', 'CANCELLED', 'EXPIRED')",
            name="ck_order_state",
        ),
        sa.CheckConstraint(
            "(state = 'PAID') = (payment_reference IS NOT NULL)",
            name="ck_order_paid_reference",
        ),
    )
    op.create_index(
        "ix_order_reseller_created", "quota_orders", ["reseller_id", "created_at", "id"]
    )
    op.create_index("ix_order_state_expiry", "quota_orders", ["state", "expires_at"])
    op.create_table(
        "quota_transactions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column(
            "owner_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_transaction_owner"),
            nullable=False,
        ),
        sa.Column(
            "order_id",
            sa.String(36),
            sa.ForeignKey("quota_orders.id", name="fk_transaction_order"),
        ),
        sa.Column("job_id", sa.String(64)),
        sa.Column(
            "reverses_id",
            sa.String(32),
            sa.ForeignKey("quota_transactions.id", name="fk_transaction_reverses"),
        ),
        sa.Column("memo", sa.String(200)),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('purchase', 'hold', 'commit', 'release')", name="ck_transaction_kind"
        ),
        sa.UniqueConstraint("reverses_id", name="uq_transaction_reverses"),
    )
    op.create_index("ix_transaction_job", "quota_transactions", ["job_id"])
    op.create_table(
        "quota_entries",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "transaction_id",
            sa.String(32),
            sa.ForeignKey("quota_transactions.id", name="fk_entry_transaction"),
            nullable=False,
        ),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("account", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id", "account"],
            ["quota_accounts.owner_id", "quota_accounts.kind"],
            name="fk_entry_account",
        ),
        sa.CheckConstraint("amount <> 0", name="ck_entry_amount"),
    )
    op.create_index("ix_entry_owner", "quota_entries", ["owner_id", "id"])
    op.create_index("ix_entry_transaction", "quota_entries", ["transaction_id"])
    op.create_table(
        "quota_serials",
        sa.Column("serial", sa.String(22), primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column(
            "owner_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_serial_owner"),
            nullable=False,
        ),
        sa.Column(
            "reseller_id",
            sa.String(36),
            sa.ForeignKey("quota_resellers.id", name="fk_serial_reseller"),
            nullable=False,
        ),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("held_at", _TS, nullable=False),
        sa.Column("issued_at", _TS),
        sa.Column("voided_at", _TS),
        sa.Column("void_reason", sa.String(200)),
        sa.Column("document_digest", sa.String(128)),
        sa.Column("document_type", sa.String(64)),
        sa.Column("document_number", sa.String(128)),
        sa.Column("document_date", sa.Date),
        sa.UniqueConstraint("job_id", name="uq_serial_job"),
        sa.CheckConstraint("status IN ('HELD', 'ISSUED', 'VOID')", name="ck_serial_status"),
        sa.CheckConstraint(
            "(status = 'ISSUED') = (issued_at IS NOT NULL AND document_digest IS NOT NULL)",
            name="ck_serial_issued_fields",
        ),
    )
    op.create_index("ix_serial_status_held", "quota_serials", ["status", "held_at"])
    op.create_index("ix_serial_owner_status", "quota_serials", ["owner_id", "status"])


def downgrade() -> None:
    for index, table in (
        ("ix_serial_owner_status", "quota_serials"),
        ("ix_serial_status_held", "quota_serials"),
        ("ix_entry_transaction", "quota_entries"),
        ("ix_entry_owner", "quota_entries"),
        ("ix_transaction_job", "quota_transactions"),
        ("ix_order_state_expiry", "quota_orders"),
        ("ix_order_reseller_created", "quota_orders"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "quota_serials",
        "quota_entries",
        "quota_transactions",
        "quota_orders",
        "quota_accounts",
        "quota_api_keys",
        "quota_resellers",
    ):
        op.drop_table(table)
