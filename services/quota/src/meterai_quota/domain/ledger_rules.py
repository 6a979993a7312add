"""Double-entry rules of the quota ledger, independent of storage.

Accounts (one set per *quota owner*, i.e. per root reseller; sub-accounts share it):

``issuer``
    The owner's slice of the issuer's stock. Purchases are minted from it, so its balance is
    the negative of everything ever sold to the owner and it is the only account allowed below
    zero. It is kept per owner rather than as one global row so that payment confirmations for
    different resellers never queue on the same row lock.
``available``
    Units the owner may spend. Never negative.
``held``
    Units reserved by in-flight stamping jobs, one per job. Never negative.
``consumed``
    Units turned into issued stamps. Never negative, only grows.

Every transaction moves units between accounts of one owner and sums to zero, hence for each
owner ``-issuer = available + held + consumed``: what was purchased is exactly what is available,
in flight or spent. Failed stamps are refunded by a *release* transaction, the reversing entries
of the hold (held -> available), which references the hold it reverses; the ``refunded`` figure
of a balance is the total of those releases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from .errors import UnbalancedTransaction

__all__ = [
    "LOCK_ORDER",
    "AccountKind",
    "Posting",
    "TransactionKind",
    "check_balanced",
    "commit_postings",
    "hold_postings",
    "may_go_negative",
    "net_by_account",
    "purchase_postings",
    "release_postings",
]


class AccountKind(StrEnum):
    ISSUER = "issuer"
    AVAILABLE = "available"
    HELD = "held"
    CONSUMED = "consumed"


class TransactionKind(StrEnum):
    PURCHASE = "purchase"
    """A confirmed payment: issuer -> available."""
    HOLD = "hold"
    """A stamping job reserved one unit: available -> held."""
    COMMIT = "commit"
    """The stamp was issued: held -> consumed."""
    RELEASE = "release"
    """The stamp failed or was abandoned; reverses its hold: held -> available."""


LOCK_ORDER: tuple[AccountKind, ...] = tuple(sorted(AccountKind, key=lambda kind: kind.value))
"""Order in which account rows are updated within a transaction. One global order means two
transactions touching the same owner's accounts can wait for each other but never deadlock."""


@dataclass(frozen=True, slots=True)
class Posting:
    """One side of a transaction: ``amount`` units added to (or, if negative, taken from) an
    account."""

    account: AccountKind
    """Which of the owner's accounts moves."""
    amount: int
    """Signed number of units; never zero."""


def may_go_negative(account: AccountKind) -> bool:
    """Only the issuer stock is a source; every other balance is floored at zero (and the
    database enforces the floor with a CHECK constraint)."""
    return account is AccountKind.ISSUER


def check_balanced(postings: Iterable[Posting]) -> tuple[Posting, ...]:
    """Return ``postings`` as a tuple if they form a valid transaction: at least two postings,
    no zero amounts, summing to zero. Raise :class:`UnbalancedTransaction` otherwise."""
    result = tuple(postings)
    if len(result) < 2:
        raise UnbalancedTransaction("a transaction needs at least two postings")
    if any(posting.amount == 0 for posting in result):
        raise UnbalancedTransaction("a posting cannot move zero units")
    total = sum(posting.amount for posting in result)
    if total != 0:
        raise UnbalancedTransaction(f"postings sum to {total}, not 0")
    return result


def _transfer(source: AccountKind, target: AccountKind, units: int) -> tuple[Posting, ...]:
    return check_balanced((Posting(source, -units), Posting(target, units)))


def purchase_postings(quantity: int) -> tuple[Posting, ...]:
    return _transfer(AccountKind.ISSUER, AccountKind.AVAILABLE, quantity)


def hold_postings() -> tuple[Posting, ...]:
    return _transfer(AccountKind.AVAILABLE, AccountKind.HELD, 1)


def commit_postings() -> tuple[Posting, ...]:
    return _transfer(AccountKind.HELD, AccountKind.CONSUMED, 1)


def release_postings() -> tuple[Posting, ...]:
    return _transfer(AccountKind.HELD, AccountKind.AVAILABLE, 1)


def net_by_account(postings: Iterable[Posting]) -> Mapping[AccountKind, int]:
    """Sum postings per account (a transaction may in principle touch an account twice)."""
    totals: dict[AccountKind, int] = {}
    for posting in postings:
        totals[posting.account] = totals.get(posting.account, 0) + posting.amount
    return totals
