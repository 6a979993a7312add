"""Reconciliation: re-derive every ledger invariant from the stored rows (G4, G5).

Each check is one aggregate query that returns the offending rows, so a report names exactly what
is wrong. The checks are deliberately independent of the code that writes the ledger: they read
entries, cached balances, orders and serials and compare them with each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .adapters.tables import accounts, entries, orders, serials, transactions
from .domain.ledger_rules import AccountKind, TransactionKind
from .domain.model import OrderState, SerialStatus
from .domain.serials import is_well_formed

__all__ = ["ReconcileReport", "reconcile"]


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    problems: tuple[str, ...]
    """One human-readable line per violated invariant instance; empty when all is well."""
    totals: dict[str, int] = field(default_factory=dict)
    """Counts that were checked (transactions, entries, serials...), for the operator's log."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> Iterator[str]:
        """Printable summary: the totals, then each problem, then the verdict."""
        for name, value in self.totals.items():
            yield f"{name:>24}: {value}"
        for problem in self.problems:
            yield f"PROBLEM: {problem}"
        yield "ledger OK" if self.ok else f"ledger INCONSISTENT: {len(self.problems)} problem(s)"


def reconcile(conn: Connection) -> ReconcileReport:
    """Check the ledger and serial invariants; never writes."""
    problems: list[str] = []
    problems += _unbalanced_transactions(conn)
    problems += _cached_balances(conn)
    problems += _signs_and_conservation(conn)
    problems += _purchases_match_paid_orders(conn)
    problems += _serials_match_accounts(conn)
    problems += _serial_uniqueness(conn)
    totals = {
        "transactions": int(conn.scalar(sa.select(sa.func.count()).select_from(transactions)) or 0),
        "entries": int(conn.scalar(sa.select(sa.func.count()).select_from(entries)) or 0),
        "serials": int(conn.scalar(sa.select(sa.func.count()).select_from(serials)) or 0),
        "owners": int(conn.scalar(sa.select(sa.func.count(sa.distinct(accounts.c.owner_id)))) or 0),
    }
    return ReconcileReport(tuple(problems), totals)


def _unbalanced_transactions(conn: Connection) -> list[str]:
    sums = (
        sa.select(
            entries.c.transaction_id,
            sa.func.sum(entries.c.amount).label("total"),
            sa.func.count().label("n"),
        )
        .group_by(entries.c.transaction_id)
        .subquery()
    )
    problems = [
        f"transaction {row.id} ({row.kind}) entries sum to {row.total or 0} over {row.n or 0} "
        "entries; must be 0 over at least 2"
        for row in conn.execute(
            sa.select(transactions.c.id, transactions.c.kind, sums.c.total, sums.c.n)
            .select_from(transactions.outerjoin(sums, sums.c.transaction_id == transactions.c.id))
            .where(
                sa.or_(sums.c.n.is_(None), sums.c.n < 2, sums.c.total != 0),
            )
        )
    ]
    problems += [
        f"entry {row.id} is for owner {row.owner_id} but its transaction belongs to {row.txn_owner}"
        for row in conn.execute(
            sa.select(entries.c.id, entries.c.owner_id, transactions.c.owner_id.label("txn_owner"))
            .select_from(entries.join(transactions, transactions.c.id == entries.c.transaction_id))
            .where(entries.c.owner_id != transactions.c.owner_id)
        )
    ]
    return problems


def _cached_balances(conn: Connection) -> list[str]:
    sums = (
        sa.select(
            entries.c.owner_id,
            entries.c.account,
            sa.func.sum(entries.c.amount).label("total"),
        )
        .group_by(entries.c.owner_id, entries.c.account)
        .subquery()
    )
    derived = sa.func.coalesce(sums.c.total, 0)
    return [
        f"{row.owner_id}/{row.kind}: cached balance {row.balance} != sum of entries {row.derived}"
        for row in conn.execute(
            sa.select(
                accounts.c.owner_id, accounts.c.kind, accounts.c.balance, derived.label("derived")
            )
            .select_from(
                accounts.outerjoin(
                    sums,
                    sa.and_(
                        sums.c.owner_id == accounts.c.owner_id, sums.c.account == accounts.c.kind
                    ),
                )
            )
            .where(accounts.c.balance != derived)
        )
    ]


def _signs_and_conservation(conn: Connection) -> list[str]:
    problems = [
        f"{row.owner_id}/{row.kind}: balance {row.balance} has the wrong sign"
        for row in conn.execute(
            sa.select(accounts.c.owner_id, accounts.c.kind, accounts.c.balance).where(
                sa.or_(
                    sa.and_(accounts.c.kind == AccountKind.ISSUER.value, accounts.c.balance > 0),
                    sa.and_(accounts.c.kind != AccountKind.ISSUER.value, accounts.c.balance < 0),
                )
            )
        )
    ]
    problems += [
        f"{row.owner_id}: purchased != available + held + consumed (off by {row.total})"
        for row in conn.execute(
            sa.select(accounts.c.owner_id, sa.func.sum(accounts.c.balance).label("total"))
            .group_by(accounts.c.owner_id)
            .having(sa.func.sum(accounts.c.balance) != 0)
        )
    ]
    return problems


def _purchases_match_paid_orders(conn: Connection) -> list[str]:
    paid = (
        sa.select(orders.c.owner_id, sa.func.sum(orders.c.quantity).label("quantity"))
        .where(orders.c.state == OrderState.PAID.value)
        .group_by(orders.c.owner_id)
        .subquery()
    )
    purchased = -accounts.c.balance
    paid_quantity = sa.func.coalesce(paid.c.quantity, 0)
    problems = [
        f"{row.owner_id}: purchased {row.purchased} != paid orders {row.paid}"
        for row in conn.execute(
            sa.select(
                accounts.c.owner_id, purchased.label("purchased"), paid_quantity.label("paid")
            )
            .select_from(accounts.outerjoin(paid, paid.c.owner_id == accounts.c.owner_id))
            .where(accounts.c.kind == AccountKind.ISSUER.value, purchased != paid_quantity)
        )
    ]
    credits = (
        sa.select(transactions.c.order_id, sa.func.count().label("n"))
        .where(transactions.c.kind == TransactionKind.PURCHASE.value)
        .group_by(transactions.c.order_id)
        .subquery()
    )
    problems += [
        f"order {row.id} ({row.state}) was credited {row.n or 0} time(s)"
        for row in conn.execute(
            sa.select(orders.c.id, orders.c.state, credits.c.n)
            .select_from(orders.outerjoin(credits, credits.c.order_id == orders.c.id))
            .where(
                sa.or_(
                    sa.and_(orders.c.state == OrderState.PAID.value, credits.c.n.is_(None)),
                    sa.and_(orders.c.state == OrderState.PAID.value, credits.c.n != 1),
                    sa.and_(orders.c.state != OrderState.PAID.value, credits.c.n.is_not(None)),
                )
            )
        )
    ]
    return problems


def _serials_match_accounts(conn: Connection) -> list[str]:
    problems: list[str] = []
    per_status: dict[tuple[str, str], int] = {
        (row.owner_id, row.status): int(row.n)
        for row in conn.execute(
            sa.select(serials.c.owner_id, serials.c.status, sa.func.count().label("n")).group_by(
                serials.c.owner_id, serials.c.status
            )
        )
    }
    per_kind: dict[tuple[str, str], int] = {
        (row.owner_id, row.kind): int(row.n)
        for row in conn.execute(
            sa.select(
                transactions.c.owner_id, transactions.c.kind, sa.func.count().label("n")
            ).group_by(transactions.c.owner_id, transactions.c.kind)
        )
    }
    for row in conn.execute(sa.select(accounts.c.owner_id, accounts.c.kind, accounts.c.balance)):
        owner, kind, balance = row.owner_id, row.kind, int(row.balance)
        if kind == AccountKind.CONSUMED.value:
            issued = per_status.get((owner, SerialStatus.ISSUED.value), 0)
            if issued != balance:
                problems.append(f"{owner}: {issued} issued serials but {balance} consumed units")
        elif kind == AccountKind.HELD.value:
            held = per_status.get((owner, SerialStatus.HELD.value), 0)
            if held != balance:
                problems.append(f"{owner}: {held} held serials but {balance} held units")
    owners = {owner for owner, _ in per_status} | {owner for owner, _ in per_kind}
    for owner in sorted(owners):
        allocated = sum(per_status.get((owner, status.value), 0) for status in SerialStatus)
        expectations = (
            (TransactionKind.HOLD, allocated, "allocated serials"),
            (
                TransactionKind.COMMIT,
                per_status.get((owner, SerialStatus.ISSUED.value), 0),
                "issued serials",
            ),
            (
                TransactionKind.RELEASE,
                per_status.get((owner, SerialStatus.VOID.value), 0),
                "void serials",
            ),
        )
        for kind, expected, what in expectations:
            actual = per_kind.get((owner, kind.value), 0)
            if actual != expected:
                problems.append(
                    f"{owner}: {actual} {kind.value} transactions but {expected} {what}"
                )
    return problems


def _serial_uniqueness(conn: Connection) -> list[str]:
    problems = [
        f"job {row.job_id} has {row.n} serials"
        for row in conn.execute(
            sa.select(serials.c.job_id, sa.func.count().label("n"))
            .group_by(serials.c.job_id)
            .having(sa.func.count() > 1)
        )
    ]
    problems += [
        f"serial {row.serial} is on {row.n} jobs"
        for row in conn.execute(
            sa.select(serials.c.serial, sa.func.count().label("n"))
            .group_by(serials.c.serial)
            .having(sa.func.count() > 1)
        )
    ]
    problems += [
        f"serial {serial!r} is malformed"
        for serial in conn.scalars(sa.select(serials.c.serial))
        if not is_well_formed(serial)
    ]
    return problems
