"""The double-entry ledger: posting balanced transactions and reading balances and entries.

Posting updates each account's cached balance with a guarded ``UPDATE`` (``balance + delta >= 0``)
in the fixed :data:`~meterai_quota.domain.ledger_rules.LOCK_ORDER`, then appends the transaction
and its entries, all on the caller's connection and therefore in the caller's transaction. The
guard turns "not enough quota" into a clean error without aborting the transaction; the CHECK
constraint on the column is the backstop should any code path forget it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .adapters.tables import accounts, entries, transactions
from .domain.errors import InsufficientQuota, LedgerInvariantViolated, ResellerNotFound
from .domain.ledger_rules import (
    LOCK_ORDER,
    AccountKind,
    Posting,
    TransactionKind,
    check_balanced,
    may_go_negative,
    net_by_account,
)
from .domain.model import Balance, LedgerEntry, Page
from .domain.pagination import clamp_page_size, decode_token, encode_token
from .resellers import quota_owner_of

__all__ = ["apply_delta", "available", "balance", "list_entries", "post", "record_transaction"]


def post(
    conn: Connection,
    *,
    owner_id: str,
    kind: TransactionKind,
    postings: Iterable[Posting],
    now: datetime,
    order_id: str | None = None,
    job_id: str | None = None,
    reverses_id: str | None = None,
    memo: str | None = None,
) -> str:
    """Append one balanced transaction for ``owner_id`` and return its id.

    Raises :class:`InsufficientQuota` if ``available`` would go below zero and
    :class:`LedgerInvariantViolated` if any other floored account would; in both cases some
    balances may already have moved, so the caller must roll back (raising does that).
    """
    checked = check_balanced(postings)
    for account, delta in sorted(
        net_by_account(checked).items(), key=lambda item: LOCK_ORDER.index(item[0])
    ):
        if not apply_delta(conn, owner_id, account, delta):
            _refuse(conn, owner_id, account)
    return record_transaction(
        conn,
        owner_id=owner_id,
        kind=kind,
        postings=checked,
        now=now,
        order_id=order_id,
        job_id=job_id,
        reverses_id=reverses_id,
        memo=memo,
    )


def record_transaction(
    conn: Connection,
    *,
    owner_id: str,
    kind: TransactionKind,
    postings: Iterable[Posting],
    now: datetime,
    order_id: str | None = None,
    job_id: str | None = None,
    reverses_id: str | None = None,
    memo: str | None = None,
) -> str:
    """Append a balanced transaction and its entries *without* touching cached balances.

    Only for callers that have already moved every balance with :func:`apply_delta` (the
    portable ``hold`` does so to fold its idempotency check into the guarded debit); everyone
    else uses :func:`post`. Reconciliation catches any caller that gets this wrong.
    """
    checked = check_balanced(postings)
    transaction_id = uuid.uuid4().hex
    conn.execute(
        transactions.insert().values(
            id=transaction_id,
            kind=kind.value,
            owner_id=owner_id,
            order_id=order_id,
            job_id=job_id,
            reverses_id=reverses_id,
            memo=memo,
            created_at=now,
        )
    )
    conn.execute(
        entries.insert().values(
            [
                {
                    "transaction_id": transaction_id,
                    "owner_id": owner_id,
                    "account": posting.account.value,
                    "amount": posting.amount,
                    "created_at": now,
                }
                for posting in checked
            ]
        )
    )
    return transaction_id


def apply_delta(conn: Connection, owner_id: str, account: AccountKind, delta: int) -> bool:
    """Add ``delta`` to one cached balance unless that would take a floored account below
    zero; return whether the balance moved. The row stays locked until the transaction ends."""
    statement = (
        accounts.update()
        .where(accounts.c.owner_id == owner_id, accounts.c.kind == account.value)
        .values(balance=accounts.c.balance + delta)
    )
    if delta < 0 and not may_go_negative(account):
        statement = statement.where(accounts.c.balance >= -delta)
    return bool(conn.execute(statement).rowcount == 1)


def _refuse(conn: Connection, owner_id: str, account: AccountKind) -> None:
    exists = conn.scalar(
        sa.select(accounts.c.balance).where(
            accounts.c.owner_id == owner_id, accounts.c.kind == account.value
        )
    )
    if exists is None:
        raise ResellerNotFound(f"{owner_id} is not a quota owner")
    if account is AccountKind.AVAILABLE:
        raise InsufficientQuota()
    raise LedgerInvariantViolated(f"{account.value} balance of {owner_id} would go below zero")


def balance(conn: Connection, owner_id: str) -> Balance:
    """Quota of the owner paying for ``owner_id`` (a sub-account resolves to its root)."""
    root = quota_owner_of(conn, owner_id)
    balances = {
        row.kind: int(row.balance)
        for row in conn.execute(
            sa.select(accounts.c.kind, accounts.c.balance).where(accounts.c.owner_id == root)
        )
    }
    # Found from the owner's release transactions (``ix_transaction_owner_kind``), so the cost
    # follows the number of refunds, not the owner's whole history of holds and commits.
    refunded = conn.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(entries.c.amount), 0))
        .select_from(transactions.join(entries, entries.c.transaction_id == transactions.c.id))
        .where(
            transactions.c.owner_id == root,
            transactions.c.kind == TransactionKind.RELEASE.value,
            entries.c.account == AccountKind.AVAILABLE.value,
        )
    )
    return Balance(
        available=balances[AccountKind.AVAILABLE],
        held=balances[AccountKind.HELD],
        consumed=balances[AccountKind.CONSUMED],
        purchased=-balances[AccountKind.ISSUER],
        refunded=int(refunded or 0),
    )


_AVAILABLE = sa.select(accounts.c.balance).where(
    accounts.c.owner_id == sa.bindparam("b_owner_id"),
    accounts.c.kind == AccountKind.AVAILABLE.value,
)


def available(conn: Connection, owner_id: str) -> int:
    """Units the owner paying for ``owner_id`` can hold now: one row read, for hot paths that
    need no more of :func:`balance`."""
    value = conn.scalar(_AVAILABLE, {"b_owner_id": quota_owner_of(conn, owner_id)})
    if value is None:
        raise ResellerNotFound(f"no quota account for {owner_id!r}")
    return int(value)


_ENTRIES = "entries"


def list_entries(
    conn: Connection,
    owner_id: str,
    *,
    page_size: int | None = None,
    page_token: str | None = None,
) -> Page[LedgerEntry]:
    """Ledger entries of the owner paying for ``owner_id``, newest first.

    :param page_size: requested page size; default 20, capped at 100.
    :param page_token: ``next_page_token`` of the previous page.
    """
    root = quota_owner_of(conn, owner_id)
    size = clamp_page_size(page_size)
    query = (
        sa.select(
            entries.c.id,
            entries.c.transaction_id,
            transactions.c.kind,
            entries.c.account,
            entries.c.amount,
            transactions.c.order_id,
            transactions.c.job_id,
            entries.c.created_at,
        )
        .select_from(entries.join(transactions, transactions.c.id == entries.c.transaction_id))
        .where(entries.c.owner_id == root)
        .order_by(entries.c.id.desc())
        .limit(size + 1)
    )
    if page_token:
        (last_id,) = decode_token(_ENTRIES, page_token, (int,))
        query = query.where(entries.c.id < last_id)
    rows = conn.execute(query).all()
    items = tuple(
        LedgerEntry(
            id=row.id,
            transaction_id=row.transaction_id,
            transaction_kind=row.kind,
            account=row.account,
            amount=int(row.amount),
            order_id=row.order_id,
            job_id=row.job_id,
            created_at=row.created_at,
        )
        for row in rows[:size]
    )
    token = encode_token(_ENTRIES, [items[-1].id]) if len(rows) > size else None
    return Page(items, token)
