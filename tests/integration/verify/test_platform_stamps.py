"""The verifier judges what the platform itself stamps: hybrid-reference and encrypted files.

A hybrid-reference original (classic table plus ``/XRefStm``) gets hybrid updates from the
engine; an encrypted one keeps its encryption. Both must be verifiable, and the change
analysis after each seal must still tell a later signature from a content change.
"""

from __future__ import annotations

from io import BytesIO

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from meterai_verify.changes import Change
from meterai_verify.pdf_check import PasswordRequired, PdfCheckError, check_pdf
from meterai_verify.sandbox import Sandbox
from tests.integration.stamping.test_restamp import FIRST, SECOND
from tests.integration.verify.conftest import OWNER_PASSWORD, USER_PASSWORD
from tests.unit.stamping.samples import build_pdf, session_signer, stamp_and_sign


def _root() -> bytes:
    return session_signer().certificate.dump()


def _stamped_twice(original: bytes) -> bytes:
    once = stamp_and_sign(original, page=1, rect=FIRST.rect, seal=FIRST.seal)
    return stamp_and_sign(once, page=1, rect=SECOND.rect, seal=SECOND.seal)


def _content_changed(pdf: bytes) -> bytes:
    """A later revision that replaces page 1's content (pyHanko writes hybrid files non-strict)."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    content = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 700 Td (DIBATALKAN) Tj ET")
    page["/Contents"] = writer.add_object(content)
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def hybrid_twice() -> bytes:
    return _stamped_twice(build_pdf(xref="hybrid"))


def test_both_seals_on_a_stamped_hybrid_file_are_genuine(hybrid_twice: bytes) -> None:
    checks = {c.serial: c for c in check_pdf(hybrid_twice, [_root()]).signatures}
    first, second = checks[FIRST.seal.serial], checks[SECOND.seal.serial]
    assert first.ok and second.ok, (first, second)
    assert first.changes == (Change.SIGNATURES,)
    assert second.changes == ()


def test_a_content_change_after_seals_on_a_hybrid_file_is_reported(hybrid_twice: bytes) -> None:
    changed = _content_changed(hybrid_twice)
    for check in check_pdf(changed, [_root()]).signatures:
        assert check.intact and check.valid and check.trusted, check
        assert Change.CONTENT in check.changes, check
        assert not check.ok, check


def test_a_hybrid_file_whose_stream_section_is_broken_is_still_refused(
    hybrid_twice: bytes,
) -> None:
    # The strict read of every section stays: the last /XRefStm pointing nowhere is refused.
    at = hybrid_twice.rindex(b"/XRefStm ") + len(b"/XRefStm ")
    end = hybrid_twice.index(b" ", at)
    broken = hybrid_twice[:at] + b"7".ljust(end - at) + hybrid_twice[end:]
    assert len(broken) == len(hybrid_twice)
    with pytest.raises(PdfCheckError, match="unreadable PDF"):
        check_pdf(broken, [_root()])


def test_an_encrypted_stamped_document_is_genuine_with_its_password(
    encrypted_stamped: bytes,
) -> None:
    checks = check_pdf(encrypted_stamped, [_root()], USER_PASSWORD).signatures
    assert [c.serial for c in checks] == [FIRST.seal.serial, SECOND.seal.serial]
    assert all(c.ok for c in checks), checks


def test_the_owner_password_opens_it_for_verification_too(encrypted_stamped: bytes) -> None:
    assert all(c.ok for c in check_pdf(encrypted_stamped, [_root()], OWNER_PASSWORD).signatures)


def test_without_its_password_the_checker_is_asked_to_supply_it(encrypted_stamped: bytes) -> None:
    with pytest.raises(PasswordRequired, match="supply the document's password"):
        check_pdf(encrypted_stamped, [_root()])


def test_a_wrong_password_is_named_as_wrong(encrypted_stamped: bytes) -> None:
    with pytest.raises(PasswordRequired, match="password given does not open it"):
        check_pdf(encrypted_stamped, [_root()], "salah")


def test_the_sandbox_passes_the_password_to_its_worker(encrypted_stamped: bytes) -> None:
    sandbox = Sandbox()
    checked = sandbox.check(encrypted_stamped, [_root()], wait_s=30, password=USER_PASSWORD)
    assert [c.ok for c in checked.signatures] == [True, True]
    with pytest.raises(PasswordRequired):
        sandbox.check(encrypted_stamped, [_root()], wait_s=30)
