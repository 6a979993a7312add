"""The audit trail is append-only in effect: any edit, deletion or reordering is found, and named.

Events are chained by :func:`meterai_common.audit.record` in a real database (SQLite file, and
PostgreSQL for concurrent recorders); the checkpoints are signed by a platform key. Tampering
is done with plain SQL, as someone with write access to the database would, and judged by
``meterai admin audit verify`` as well as by :func:`~meterai_common.audit.verify`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from meterai_common import audit
from meterai_common.db import create_engine, transaction
from meterai_signing.audit_hook import PlatformCheckpointSigner, record_signature
from meterai_signing.cms import SigningIdentity, load_identity
from meterai_signing.pki import generate_test_pki
from meterai_signing.signer import SignatureMade
from tests.support.databases import migrated_postgres_database

METERAI = str(Path(sys.executable).with_name("meterai"))
EVENTS = 12
EVERY = 5


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    pki = generate_test_pki(tmp_path_factory.mktemp("pki"), key_type="ecdsa-p256")
    return load_identity(pki.signer_key, pki.chain)


@pytest.fixture
def checkpoints(identity: SigningIdentity) -> PlatformCheckpointSigner:
    return PlatformCheckpointSigner(identity.key, identity.signer_certificate)


def _serial(n: int) -> str:
    return f"SERIAL{n:016d}"


@pytest.fixture
def trail(sqlite_url: str, checkpoints: PlatformCheckpointSigner) -> sa.Engine:
    """A database holding 12 signature events, checkpointed after the 5th and 10th."""
    engine = create_engine(sqlite_url)
    for n in range(1, EVENTS + 1):
        made = SignatureMade(f"job-{n}", _serial(n), f"{n:064x}", "memory ECDSA", True)
        record_signature(engine, made, checkpoints, EVERY)
    return engine


def _verify(engine: sa.Engine) -> audit.ChainReport:
    with engine.connect() as conn:
        return audit.verify(conn)


def _cli(engine: sa.Engine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    return subprocess.run(
        [METERAI, "admin", "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _sql(engine: sa.Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


class TestAnIntactTrail:
    def test_verifies_with_its_checkpoints(self, trail: sa.Engine) -> None:
        report = _verify(trail)
        assert report.ok, report.problem
        assert (report.events, report.checkpoints) == (EVENTS, 2)

    def test_audit_verify_says_intact(self, trail: sa.Engine) -> None:
        result = _cli(trail, "verify")
        assert result.returncode == 0, result.stderr
        assert "intact: 12 events, 2 checkpoints" in result.stdout

    def test_audit_show_gives_a_stamps_history(self, trail: sa.Engine) -> None:
        result = _cli(trail, "show", "--serial", _serial(7))
        assert result.returncode == 0, result.stderr
        (line,) = result.stdout.splitlines()
        assert line.startswith("#7 ") and "signature_made" in line
        assert "job_id=job-7" in line and "key_label=memory ECDSA" in line
        assert f"digest={7:064x}" in line


TAMPERING: dict[str, tuple[str, int, str]] = {
    "edited": (
        "UPDATE audit_events SET details = replace(details, 'job-7', 'job-x') WHERE seq = 7",
        7,
        "row 7 was edited",
    ),
    "deleted": ("DELETE FROM audit_events WHERE seq = 4", 4, "row 4 is missing"),
    "last deleted": ("DELETE FROM audit_events WHERE seq = 12", 12, "deleted at the end"),
    "time changed": (
        "UPDATE audit_events SET at = '2020-01-01T00:00:00.000000+00:00' WHERE seq = 2",
        2,
        "row 2 was edited",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_is_found_and_the_row_named(trail: sa.Engine, case: str) -> None:
    statement, row, problem = TAMPERING[case]
    _sql(trail, statement)
    report = _verify(trail)
    assert not report.ok
    assert report.broken_at == row
    assert problem in (report.problem or "")
    result = _cli(trail, "verify")
    assert result.returncode != 0
    assert f"BROKEN at row {row}" in result.stdout


def test_reordering_two_rows_is_found_at_the_first(trail: sa.Engine) -> None:
    with trail.begin() as conn:
        rows = {
            r.seq: r
            for r in conn.execute(sa.text("SELECT * FROM audit_events WHERE seq IN (3, 6)"))
        }
        for seq, other in ((3, 6), (6, 3)):
            source = rows[other]
            conn.execute(
                sa.text(
                    "UPDATE audit_events SET at = :at, kind = :kind, subject = :subject, "
                    "details = :details, prev_hash = :prev_hash, hash = :hash WHERE seq = :seq"
                ),
                {
                    "at": source.at,
                    "kind": source.kind,
                    "subject": source.subject,
                    "details": source.details,
                    "prev_hash": source.prev_hash,
                    "hash": source.hash,
                    "seq": seq,
                },
            )
    report = _verify(trail)
    assert report.broken_at == 3 and "does not follow" in (report.problem or "")


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(trail: sa.Engine) -> None:
    """Editing row 2 and recomputing every hash after it keeps the chain consistent; the
    checkpoint over row 5, signed by the platform key, no longer matches."""
    from meterai_common.audit import _link

    with trail.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET subject = 'FORGED' WHERE seq = 2"))
        prev = audit.GENESIS
        for r in conn.execute(sa.text("SELECT * FROM audit_events ORDER BY seq")).all():
            digest = _link(prev, r.seq, r.at, r.kind, r.subject, r.details)
            conn.execute(
                sa.text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": digest, "s": r.seq},
            )
            prev = digest
        conn.execute(sa.text("UPDATE audit_head SET hash = :h"), {"h": prev})
    report = _verify(trail)
    assert report.broken_at == 5
    assert "checkpoint 5 signed another chain" in (report.problem or "")


def test_a_forged_checkpoint_signature_is_found(trail: sa.Engine) -> None:
    _sql(trail, "UPDATE audit_checkpoints SET signature = :s WHERE seq = 10", s=b"\x30\x00")
    report = _verify(trail)
    assert report.broken_at == 10 and "not signed by the platform key" in (report.problem or "")


def test_concurrent_recorders_keep_one_gapless_chain(
    checkpoints: PlatformCheckpointSigner,
) -> None:
    """Eight threads record at once on PostgreSQL: the head lock chains them in commit order."""
    with migrated_postgres_database("meterai_audit") as url:
        engine = create_engine(url)
        errors: list[BaseException] = []

        def recorder(thread: int) -> Callable[[], None]:
            def run() -> None:
                try:
                    for n in range(10):
                        made = SignatureMade(f"job-{thread}-{n}", _serial(n), "0" * 64, "k", True)
                        record_signature(engine, made, checkpoints, 7)
                except BaseException as error:
                    errors.append(error)

            return run

        threads = [threading.Thread(target=recorder(t)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        report = _verify(engine)
        assert report.ok, report.problem
        assert report.events == 80 and report.checkpoints == 80 // 7
        engine.dispose()


def test_a_payment_event_chains_with_the_rest(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with transaction(engine) as conn:
        row = audit.record(
            conn,
            audit.AuditEvent(audit.EventKind.PAYMENT_CONFIRMED, "order-1", {"amount_idr": 10000}),
        )
    assert row.seq == 1 and row.prev_hash == audit.GENESIS
    assert _verify(engine).ok
