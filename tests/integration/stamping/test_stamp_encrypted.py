"""Encrypted documents are stamped with their own key and keep their protection.

Every security-handler revision a current producer writes (RC4 40 and 128 bit,
AES-128, AES-256) is stamped twice, with an empty user password and with one
the request supplies; both seals validate in pdfsig, pyHanko and qpdf (given
the password, as a person opening the file would), the QR codes decode from
the rendered page, and ``qpdf --show-encryption`` reports the same method and
permissions before and after.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from meterai_stamping.engine import EncryptedPdf
from tests.integration.stamping.seal_checks import Placed, assert_seals_hold
from tests.integration.stamping.test_restamp import FIRST, SECOND
from tests.unit.stamping.samples import CORPUS, CORPUS_PASSWORDS, prepare_seal, stamp_and_sign

_OWNER = "pemilik-dokumen"
_REVISIONS = {
    "R2 RC4-40": ["40", "--print=n", "--modify=n"],
    "R3 RC4-128": ["128", "--use-aes=n", "--print=low", "--modify=none"],
    "R4 AES-128": ["128", "--use-aes=y", "--print=low", "--modify=none"],
    "R6 AES-256": ["256", "--print=low", "--modify=none"],
}


def _encrypted(user: str, args: list[str], tmp_path: Path) -> bytes:
    source = CORPUS / "pdflatex-4-pages.pdf"
    target = tmp_path / "encrypted.pdf"
    subprocess.run(
        ["qpdf", "--allow-weak-crypto", "--encrypt", user, _OWNER, *args, "--",
         str(source), str(target)],
        check=True,
        timeout=60,
    )  # fmt: skip
    return target.read_bytes()


def _show_encryption(pdf: bytes, password: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        return subprocess.run(
            ["qpdf", f"--password={password}", "--show-encryption", f.name],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout


def _stamp_all_with(original: bytes, placed: list[Placed], password: str | None) -> bytes:
    out = original
    for item in placed:
        out = stamp_and_sign(out, page=item.page, rect=item.rect, seal=item.seal, password=password)
        assert out.startswith(original)
    return out


@pytest.mark.parametrize("user", ["", "rahasia"], ids=["empty user password", "user password"])
@pytest.mark.parametrize("revision", sorted(_REVISIONS))
def test_an_encrypted_document_takes_two_seals_and_keeps_its_protection(
    revision: str, user: str, tmp_path: Path
) -> None:
    original = _encrypted(user, _REVISIONS[revision], tmp_path)
    twice = _stamp_all_with(original, [FIRST, SECOND], user or None)
    assert_seals_hold(twice, [FIRST, SECOND], password=user)
    assert _show_encryption(twice, user) == _show_encryption(original, user)
    if user:
        with pytest.raises(EncryptedPdf, match="protected by a password"):
            prepare_seal(twice)


def test_the_owner_password_opens_a_document_for_stamping_too(tmp_path: Path) -> None:
    original = _encrypted("rahasia", _REVISIONS["R6 AES-256"], tmp_path)
    once = _stamp_all_with(original, [FIRST], _OWNER)
    assert_seals_hold(once, [FIRST], password="rahasia")


def test_aes_256_revision_5_is_refused_because_the_verifier_cannot_read_it(
    tmp_path: Path,
) -> None:
    original = _encrypted("", ["256", "--force-R5"], tmp_path)
    with pytest.raises(EncryptedPdf, match="revision 5") as caught:
        prepare_seal(original)
    assert caught.value.code == "FAILED_PRECONDITION"


@pytest.mark.parametrize("name", [*sorted(CORPUS_PASSWORDS), "r6-user-password.pdf"])
def test_encrypted_corpus_documents_take_two_seals_with_their_password(name: str) -> None:
    original = (CORPUS / name).read_bytes()
    password = CORPUS_PASSWORDS.get(name, "")
    twice = _stamp_all_with(original, [FIRST, SECOND], password or None)
    assert_seals_hold(twice, [FIRST, SECOND], password=password)
    assert _show_encryption(twice, password) == _show_encryption(original, password)
