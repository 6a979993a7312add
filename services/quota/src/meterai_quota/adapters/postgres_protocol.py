"""The stamping protocol's hot path on PostgreSQL: ``hold`` and ``commit`` as one statement each.

Each statement chains data-modifying CTEs, where every step reads the ``RETURNING`` rows of the
step before. A step that affects no row empties every later step, so a refused guard leaves
nothing written and the caller's transaction intact, with no SAVEPOINT; the result row says how
far the chain got and :mod:`meterai_quota.holds` turns that into a return value or an error.
This saves the round trips the portable path needs (seven statements per protocol step there,
one here); the portable path stays the reference and SQLite's path.

The chains touch rows in the order the portable path does: ``hold`` locks the owner's
``available`` row, inserts the serial and then locks ``held``; ``commit`` locks the serial, then
``consumed``, then ``held`` (:data:`~meterai_quota.domain.ledger_rules.LOCK_ORDER`). Foreign keys
are checked at the end of the statement, when the transaction row they reference exists.

Account kinds and amounts are written from the domain's postings into the SQL text when this
module is imported; they are enum values and integers, never caller input.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..domain.ledger_rules import Posting, commit_postings, hold_postings
from ..domain.model import SerialStatus
from .tables import UtcDateTime

__all__ = ["COMMIT", "HOLD"]


def _transfer(postings: tuple[Posting, ...]) -> tuple[Posting, Posting]:
    """Split a one-to-one transfer into its (debit, credit) postings."""
    debit, credit = sorted(postings, key=lambda posting: posting.amount)
    if len(postings) != 2 or debit.amount != -credit.amount or debit.amount >= 0:
        raise ValueError("the single-statement path only posts one-to-one transfers")
    return debit, credit


def _entries_values(postings: tuple[Posting, ...]) -> str:
    return ", ".join(
        f"({position}, '{posting.account.value}', {posting.amount})"
        for position, posting in enumerate(postings)
    )


def _typed(statement: str, *times: str) -> sa.TextClause:
    """The statement with ``:now`` and each of ``times`` bound as UTC datetimes."""
    return sa.text(statement).bindparams(
        *(sa.bindparam(name, type_=UtcDateTime()) for name in ("now", *times))
    )


_HOLD_DEBIT, _HOLD_CREDIT = _transfer(hold_postings())
_HOLD_ENTRIES = _entries_values(hold_postings())
_COMMIT_DEBIT, _COMMIT_CREDIT = _transfer(commit_postings())
_COMMIT_ENTRIES = _entries_values(commit_postings())

HOLD = _typed(
    f"""
WITH debited AS (
    UPDATE quota_accounts
       SET balance = balance - {_HOLD_CREDIT.amount}
     WHERE owner_id = :owner_id
       AND kind = '{_HOLD_DEBIT.account.value}'
       AND balance >= {_HOLD_CREDIT.amount}
       AND NOT EXISTS (SELECT FROM quota_serials WHERE job_id = :job_id)
    RETURNING owner_id
), allocated AS (
    INSERT INTO quota_serials (serial, job_id, owner_id, reseller_id, status, held_at)
    SELECT :serial, :job_id, owner_id, :reseller_id, '{SerialStatus.HELD.value}', :now
      FROM debited
    ON CONFLICT DO NOTHING
    RETURNING serial, owner_id
), credited AS (
    UPDATE quota_accounts AS account
       SET balance = account.balance + {_HOLD_CREDIT.amount}
      FROM allocated
     WHERE account.owner_id = allocated.owner_id
       AND account.kind = '{_HOLD_CREDIT.account.value}'
    RETURNING account.owner_id
), recorded AS (
    INSERT INTO quota_transactions (id, kind, owner_id, job_id, created_at)
    SELECT :transaction_id, :kind, owner_id, :job_id, :now FROM credited
    RETURNING id, owner_id
), posted AS (
    INSERT INTO quota_entries (transaction_id, owner_id, account, amount, created_at)
    SELECT recorded.id, recorded.owner_id, posting.account, posting.amount, :now
      FROM recorded
     CROSS JOIN (VALUES {_HOLD_ENTRIES}) AS posting (position, account, amount)
     ORDER BY posting.position
    RETURNING 1
)
SELECT (SELECT count(*) FROM debited) AS debited,
       (SELECT serial FROM allocated) AS serial,
       (SELECT count(*) FROM posted) AS entries
"""
)
"""Move one unit from available to held, allocate ``:serial`` to ``:job_id`` and record the
hold transaction. Result: ``debited`` (0 when quota ran out, the owner is unknown or the job
already has a serial), ``serial`` (NULL when the serial or job id was taken concurrently, in
which case the unit was debited and must be given back) and ``entries`` (2 when posted)."""

COMMIT = _typed(
    f"""
WITH issued AS (
    UPDATE quota_serials
       SET status = '{SerialStatus.ISSUED.value}',
           issued_at = :now,
           document_digest = :document_digest,
           document_type = :document_type,
           document_number = :document_number,
           document_date = :document_date,
           trusted_time = :trusted_time
     WHERE job_id = :job_id AND status = '{SerialStatus.HELD.value}'
    RETURNING serial, owner_id
), credited AS (
    UPDATE quota_accounts AS account
       SET balance = account.balance + {_COMMIT_CREDIT.amount}
      FROM issued
     WHERE account.owner_id = issued.owner_id
       AND account.kind = '{_COMMIT_CREDIT.account.value}'
    RETURNING account.owner_id
), debited AS (
    UPDATE quota_accounts AS account
       SET balance = account.balance - {_COMMIT_CREDIT.amount}
      FROM credited
     WHERE account.owner_id = credited.owner_id
       AND account.kind = '{_COMMIT_DEBIT.account.value}'
       AND account.balance >= {_COMMIT_CREDIT.amount}
    RETURNING account.owner_id
), recorded AS (
    INSERT INTO quota_transactions (id, kind, owner_id, job_id, created_at)
    SELECT :transaction_id, :kind, owner_id, :job_id, :now FROM debited
    RETURNING id, owner_id
), posted AS (
    INSERT INTO quota_entries (transaction_id, owner_id, account, amount, created_at)
    SELECT recorded.id, recorded.owner_id, posting.account, posting.amount, :now
      FROM recorded
     CROSS JOIN (VALUES {_COMMIT_ENTRIES}) AS posting (position, account, amount)
     ORDER BY posting.position
    RETURNING 1
)
SELECT issued.serial, (SELECT count(*) FROM posted) AS entries FROM issued
""",
    "trusted_time",
)
"""Issue the job's HELD serial for a document, move its unit from held to consumed and record
the commit transaction. No row when the job has no HELD serial; ``entries`` below 2 means the
held balance was missing (the statement's other writes must then be rolled back)."""
