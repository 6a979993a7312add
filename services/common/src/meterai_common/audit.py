"""The audit trail: an append-only, hash-chained log of security events in the platform database.

Every event (a signature made, a key created, rotated or revoked, a payment confirmed, an
operator action) is one row of ``audit_events`` with a gapless sequence number and the SHA-256
of its own contents chained to the previous row's hash. Changing, deleting or reordering any row
breaks the chain at that row, and :func:`verify` names it. The chain head (last sequence number
and hash) sits in the one row of ``audit_head``; appends lock it, so events are chained in
commit order by every process alike, and deleting rows at the end no longer matches the head.

A chain alone does not stop someone who can write the database from rewriting every hash after
an edit. So every so often (``METERAI_AUDIT_CHECKPOINT_EVERY`` events) the head is signed by the
platform key into ``audit_checkpoints``: rewriting history before a checkpoint needs that key,
which lives in the signing service (in an HSM when one is configured).

:func:`record` is the whole recording API: call it inside the transaction of the change being
recorded, so that the event and the change commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy.engine import Connection

__all__ = [
    "GENESIS",
    "AuditEvent",
    "AuditRow",
    "ChainReport",
    "CheckpointSigner",
    "EventKind",
    "checkpoint",
    "checkpoint_due",
    "events_about",
    "record",
    "verify",
]

GENESIS = "0" * 64
"""The hash the first event chains to."""

_metadata = sa.MetaData()
audit_events = sa.Table(
    "audit_events",
    _metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(100)),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
audit_head = sa.Table(
    "audit_head",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("checkpoint_seq", sa.BigInteger, nullable=False),
)
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    _metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("key_label", sa.String(200), nullable=False),
    sa.Column("algorithm", sa.String(40), nullable=False),
    sa.Column("certificate", sa.LargeBinary, nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),
)


class EventKind(StrEnum):
    """What happened; the ``kind`` column."""

    SIGNATURE_MADE = "signature_made"
    KEY_CREATED = "key_created"
    KEY_ROTATED = "key_rotated"
    KEY_REVOKED = "key_revoked"
    PAYMENT_CONFIRMED = "payment_confirmed"
    OPERATOR_ACTION = "operator_action"


@dataclass(frozen=True)
class AuditEvent:
    """One security event, before it is chained."""

    kind: EventKind | str
    subject: str | None = None
    """What the event is about, for :func:`events_about`: a serial, an order id, a key label."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """JSON-serialisable facts (job id, digest, key label, amount, operator ...)."""


@dataclass(frozen=True)
class AuditRow:
    """A chained event as stored."""

    seq: int
    at: str
    kind: str
    subject: str | None
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


class CheckpointSigner(Protocol):
    """The platform key as the audit trail needs it (the signing service provides one)."""

    @property
    def key_label(self) -> str: ...

    @property
    def algorithm(self) -> str:
        """``sha256_rsa`` or ``sha256_ecdsa``."""
        ...

    @property
    def certificate_der(self) -> bytes:
        """The key's certificate, stored with each checkpoint to verify it by."""
        ...

    def sign_raw(self, data: bytes) -> bytes: ...


def _link(prev_hash: str, seq: int, at: str, kind: str, subject: str | None, details: str) -> str:
    material = json.dumps([prev_hash, seq, at, kind, subject, details], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def _checkpoint_message(seq: int, head_hash: str, at: str) -> bytes:
    return f"meterai audit checkpoint\n{seq}\n{head_hash}\n{at}\n".encode()


def _now_text(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def record(conn: Connection, event: AuditEvent, *, now: datetime | None = None) -> AuditRow:
    """Append ``event`` to the chain inside the caller's transaction.

    Locks the chain head until the transaction ends: concurrent recorders queue (on SQLite the
    write lock already serialises them).

    :return: the row as chained.
    """
    head = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).one()
    seq = int(head.seq) + 1
    at = _now_text(now)
    kind = str(event.kind)
    details = json.dumps(dict(event.details), sort_keys=True, separators=(",", ":"))
    digest = _link(head.hash, seq, at, kind, event.subject, details)
    conn.execute(
        audit_events.insert().values(
            seq=seq,
            at=at,
            kind=kind,
            subject=event.subject,
            details=details,
            prev_hash=head.hash,
            hash=digest,
        )
    )
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=digest))
    return AuditRow(seq, at, kind, event.subject, dict(event.details), head.hash, digest)


def checkpoint_due(conn: Connection, every: int) -> bool:
    """Whether ``every`` or more events were chained since the last checkpoint."""
    head = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.checkpoint_seq).where(audit_head.c.id == 1)
    ).one()
    return int(head.seq) - int(head.checkpoint_seq) >= every


def checkpoint(
    conn: Connection, signer: CheckpointSigner, *, now: datetime | None = None
) -> int | None:
    """Sign the chain head with the platform key; returns its sequence number (``None`` when
    the head is already checkpointed). Call inside a transaction."""
    head = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash, audit_head.c.checkpoint_seq)
        .where(audit_head.c.id == 1)
        .with_for_update()
    ).one()
    seq = int(head.seq)
    if seq == 0 or seq == int(head.checkpoint_seq):
        return None
    at = _now_text(now)
    signature = signer.sign_raw(_checkpoint_message(seq, head.hash, at))
    conn.execute(
        audit_checkpoints.insert().values(
            seq=seq,
            hash=head.hash,
            at=at,
            key_label=signer.key_label[:200],
            algorithm=signer.algorithm,
            certificate=signer.certificate_der,
            signature=signature,
        )
    )
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(checkpoint_seq=seq))
    return seq


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify` found."""

    events: int
    checkpoints: int
    broken_at: int | None = None
    """Sequence number of the first row that does not hold, or ``None``."""
    problem: str | None = None
    """What is wrong there, in words for the operator."""

    @property
    def ok(self) -> bool:
        return self.problem is None


def _signature_holds(row: Any) -> bool:
    try:
        public_key = x509.load_der_x509_certificate(row.certificate).public_key()
        message = _checkpoint_message(int(row.seq), row.hash, row.at)
        if row.algorithm == "sha256_rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(row.signature, message, padding.PKCS1v15(), hashes.SHA256())
            return True
        if row.algorithm == "sha256_ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(row.signature, message, ec.ECDSA(hashes.SHA256()))
            return True
    except (InvalidSignature, ValueError, TypeError):
        return False
    return False


def verify(conn: Connection, trusted_certificates: Sequence[bytes] = ()) -> ChainReport:
    """Recompute the whole chain and every checkpoint; stop at the first link that fails.

    :param trusted_certificates: DER certificates a checkpoint may be signed with (the
        platform key's, past and present); empty accepts the certificate stored with it,
        which still proves the checkpoint was not re-signed with another key only if the
        operator compares the key label shown.
    """
    checkpoints = {
        int(row.seq): row
        for row in conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.seq))
    }
    expected_seq, prev = 1, GENESIS
    count = 0
    rows = conn.execute(sa.select(audit_events).order_by(audit_events.c.seq))
    for row in rows:
        count += 1
        seq = int(row.seq)
        if seq != expected_seq:
            return ChainReport(
                count,
                len(checkpoints),
                expected_seq,
                f"row {expected_seq} is missing (the next row is {seq}): rows were deleted",
            )
        if row.prev_hash != prev:
            return ChainReport(
                count,
                len(checkpoints),
                seq,
                f"row {seq} does not follow row {seq - 1}: rows were reordered, replaced "
                "or deleted",
            )
        if _link(prev, seq, row.at, row.kind, row.subject, row.details) != row.hash:
            return ChainReport(
                count, len(checkpoints), seq, f"row {seq} was edited: its hash does not match"
            )
        mark = checkpoints.get(seq)
        if mark is not None:
            if mark.hash != row.hash:
                return ChainReport(
                    count,
                    len(checkpoints),
                    seq,
                    f"checkpoint {seq} signed another chain: rows up to {seq} were rewritten",
                )
            if not _signature_holds(mark) or (
                trusted_certificates and mark.certificate not in trusted_certificates
            ):
                return ChainReport(
                    count,
                    len(checkpoints),
                    seq,
                    f"checkpoint {seq} is not signed by the platform key",
                )
        prev, expected_seq = row.hash, seq + 1
    head = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    ).one_or_none()
    last = expected_seq - 1
    if head is None or int(head.seq) != last or head.hash != prev:
        said = "missing" if head is None else f"at row {head.seq}"
        return ChainReport(
            count,
            len(checkpoints),
            last + 1,
            f"the chain ends at row {last} but its head is {said}: rows were deleted at the end",
        )
    beyond = [seq for seq in checkpoints if seq > last]
    if beyond:
        return ChainReport(
            count,
            len(checkpoints),
            min(beyond),
            f"checkpoint {min(beyond)} covers rows that are gone: rows were deleted",
        )
    return ChainReport(count, len(checkpoints))


def events_about(conn: Connection, subject: str) -> list[AuditRow]:
    """Every event about ``subject`` (a serial, an order id ...), oldest first."""
    rows = conn.execute(
        sa.select(audit_events)
        .where(audit_events.c.subject == subject)
        .order_by(audit_events.c.seq)
    )
    return [
        AuditRow(int(r.seq), r.at, r.kind, r.subject, json.loads(r.details), r.prev_hash, r.hash)
        for r in rows
    ]
