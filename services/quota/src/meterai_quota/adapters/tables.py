"""SQLAlchemy Core description of the quota tables, as created by the migrations.

The migration is the source of truth for DDL (migrations must not import service code); this
module mirrors it for queries, and ``tests/integration/quota`` checks that the two agree.

Constraint names are explicit so that both describe exactly the same schema on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "UtcDateTime",
    "accounts",
    "api_keys",
    "entries",
    "metadata",
    "orders",
    "resellers",
    "serials",
    "transactions",
]


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware datetimes in, UTC datetimes out, on both backends.

    PostgreSQL stores ``timestamptz``; SQLite has no time zone support, so values are stored as
    naive UTC and given back their zone on the way out. Naive input is refused: a naive
    "now" from a server in Jakarta would silently shift every expiry by seven hours.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Auto-incrementing key: SQLite only auto-increments ``INTEGER PRIMARY KEY``."""

metadata = sa.MetaData()

resellers = sa.Table(
    "quota_resellers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column(
        "parent_id", sa.String(36), sa.ForeignKey("quota_resellers.id", name="fk_reseller_parent")
    ),
    sa.Column(
        "root_id",
        sa.String(36),
        sa.ForeignKey("quota_resellers.id", name="fk_reseller_root"),
        nullable=False,
    ),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
sa.Index("uq_quota_resellers_name", sa.func.lower(resellers.c.name), unique=True)
"""A name names one reseller (migration 0008): the database refuses a second "Toko Contoh"."""

api_keys = sa.Table(
    "quota_api_keys",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column(
        "reseller_id",
        sa.String(36),
        sa.ForeignKey("quota_resellers.id", name="fk_api_key_reseller"),
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Column("prefix", sa.String(12)),
    sa.Column("expires_at", UtcDateTime()),
    sa.CheckConstraint("role IN ('reseller', 'operator')", name="ck_api_key_role"),
    sa.CheckConstraint(
        "(role = 'operator' AND reseller_id IS NULL)"
        " OR (role = 'reseller' AND reseller_id IS NOT NULL)",
        name="ck_api_key_reseller_role",
    ),
    sa.Index("ix_api_key_created", "created_at", "key_hash"),
    sa.Index("ix_api_key_reseller_created", "reseller_id", "created_at", "key_hash"),
)

accounts = sa.Table(
    "quota_accounts",
    metadata,
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

orders = sa.Table(
    "quota_orders",
    metadata,
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
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("paid_at", UtcDateTime()),
    sa.Column("closed_at", UtcDateTime()),
    sa.UniqueConstraint("reseller_id", "idempotency_key", name="uq_order_idempotency"),
    sa.UniqueConstraint("payment_reference", name="uq_order_payment_reference"),
    sa.CheckConstraint("quantity > 0", name="ck_order_quantity"),
    sa.CheckConstraint("total_idr = quantity * unit_price_idr", name="ck_order_total"),
    sa.CheckConstraint(
        "state IN ('AWAITING_PAYMENT', 'PAID', 'CANCELLED', 'EXPIRED')", name="ck_order_state"
    ),
    sa.CheckConstraint(
        "(state = 'PAID') = (payment_reference IS NOT NULL)", name="ck_order_paid_reference"
    ),
    sa.Index("ix_order_reseller_created", "reseller_id", "created_at", "id"),
    sa.Index("ix_order_state_expiry", "state", "expires_at"),
)

transactions = sa.Table(
    "quota_transactions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column(
        "owner_id",
        sa.String(36),
        sa.ForeignKey("quota_resellers.id", name="fk_transaction_owner"),
        nullable=False,
    ),
    sa.Column(
        "order_id", sa.String(36), sa.ForeignKey("quota_orders.id", name="fk_transaction_order")
    ),
    sa.Column("job_id", sa.String(64)),
    sa.Column(
        "reverses_id",
        sa.String(32),
        sa.ForeignKey("quota_transactions.id", name="fk_transaction_reverses"),
    ),
    sa.Column("memo", sa.String(200)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint(
        "kind IN ('purchase', 'hold', 'commit', 'release')", name="ck_transaction_kind"
    ),
    sa.UniqueConstraint("reverses_id", name="uq_transaction_reverses"),
    sa.Index("ix_transaction_job", "job_id"),
    sa.Index("ix_transaction_owner_kind", "owner_id", "kind"),
)

entries = sa.Table(
    "quota_entries",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "transaction_id",
        sa.String(32),
        sa.ForeignKey("quota_transactions.id", name="fk_entry_transaction"),
        nullable=False,
    ),
    sa.Column("owner_id", sa.String(36), nullable=False),
    sa.Column("account", sa.String(16), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(
        ["owner_id", "account"],
        ["quota_accounts.owner_id", "quota_accounts.kind"],
        name="fk_entry_account",
    ),
    sa.CheckConstraint("amount <> 0", name="ck_entry_amount"),
    sa.Index("ix_entry_owner", "owner_id", "id"),
    sa.Index("ix_entry_transaction", "transaction_id"),
)

serials = sa.Table(
    "quota_serials",
    metadata,
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
    sa.Column("held_at", UtcDateTime(), nullable=False),
    sa.Column("issued_at", UtcDateTime()),
    sa.Column("voided_at", UtcDateTime()),
    sa.Column("void_reason", sa.String(200)),
    sa.Column("document_digest", sa.String(128)),
    sa.Column("document_type", sa.String(64)),
    sa.Column("document_number", sa.String(128)),
    sa.Column("document_date", sa.Date),
    sa.Column("trusted_time", UtcDateTime()),
    sa.UniqueConstraint("job_id", name="uq_serial_job"),
    sa.CheckConstraint("status IN ('HELD', 'ISSUED', 'VOID')", name="ck_serial_status"),
    sa.CheckConstraint(
        "(status = 'ISSUED') = (issued_at IS NOT NULL AND document_digest IS NOT NULL)",
        name="ck_serial_issued_fields",
    ),
    sa.Index("ix_serial_status_held", "status", "held_at"),
    sa.Index("ix_serial_owner_status", "owner_id", "status"),
)
