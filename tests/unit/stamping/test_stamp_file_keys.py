"""Opening AES-256 documents: the file key is derived once per document and password, and
the empty user password with one hash when ``/Perms`` confirms the key; the ``/Encrypt``
dictionary is read as pypdf reads it."""

from __future__ import annotations

from io import BytesIO

import pytest
from pypdf import PasswordType, PdfReader, PdfWriter
from pypdf._encryption import AlgV5, Encryption

from meterai_stamping.engine import EncryptedPdf, inspect
from meterai_stamping.engine.file_keys import forget_file_keys, open_with_password
from meterai_stamping.engine.source import _hex_strings_decoded
from tests.unit.stamping.samples import build_pdf


def _aes256(user: str, owner: str) -> bytes:
    writer = PdfWriter(clone_from=BytesIO(build_pdf()))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="AES-256")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_remembered_key_opens_the_same_document_again() -> None:
    forget_file_keys()
    pdf = _aes256("", "pemilik")
    first = inspect(pdf)
    assert inspect(pdf) == first


def test_a_key_remembered_for_one_password_does_not_open_the_document_for_another() -> None:
    forget_file_keys()
    pdf = _aes256("rahasia", "pemilik")
    assert inspect(pdf, password="rahasia").page_count == 1
    with pytest.raises(EncryptedPdf, match="password is wrong"):
        inspect(pdf, password="salah")
    with pytest.raises(EncryptedPdf, match="protected by a password"):
        inspect(pdf)


def test_the_owner_password_still_opens_a_document_with_an_empty_user_password() -> None:
    forget_file_keys()
    pdf = _aes256("", "pemilik")
    assert inspect(pdf, password="pemilik").page_count == 1
    assert inspect(pdf).page_count == 1


def _encryption_of(pdf: bytes) -> Encryption:
    reader = PdfReader(BytesIO(pdf))
    encryption = reader._encryption
    assert encryption is not None
    ids = reader.trailer["/ID"]
    return Encryption.read(reader.trailer["/Encrypt"].get_object(), ids[0].original_bytes)


def test_the_one_hash_key_of_an_empty_user_password_is_the_key_pypdf_derives() -> None:
    forget_file_keys()
    pdf = _aes256("", "pemilik")
    reference = PdfReader(BytesIO(pdf))._encryption
    assert reference is not None and reference._key
    ours = _encryption_of(pdf)
    assert open_with_password(ours, "") == PasswordType.USER_PASSWORD
    assert ours._key == reference._key
    assert ours._are_permissions_valid


def test_a_key_that_perms_does_not_confirm_is_checked_the_full_way() -> None:
    forget_file_keys()
    pdf = _aes256("", "pemilik")
    reference = PdfReader(BytesIO(pdf))._encryption
    assert reference is not None
    tampered = _encryption_of(pdf)
    tampered.values.Perms = bytes(16)
    assert open_with_password(tampered, "") == PasswordType.USER_PASSWORD
    assert tampered._key == reference._key
    assert not tampered._are_permissions_valid


def test_an_empty_user_password_costs_one_hardened_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    forget_file_keys()
    encryption = _encryption_of(_aes256("", "pemilik"))
    hashes: list[bytes] = []
    derive = AlgV5.calculate_hash

    def counted(revision: int, password: bytes, salt: bytes, udata: bytes) -> bytes:
        hashes.append(salt)
        return derive(revision, password, salt, udata)

    monkeypatch.setattr(AlgV5, "calculate_hash", staticmethod(counted))
    assert open_with_password(encryption, "") == PasswordType.USER_PASSWORD
    assert len(hashes) == 1


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_the_encrypt_dictionary_read_the_quick_way_is_the_one_pypdf_reads(algorithm: str) -> None:
    writer = PdfWriter(clone_from=BytesIO(build_pdf()))
    writer.encrypt(user_password="", owner_password="pemilik", algorithm=algorithm)
    out = BytesIO()
    writer.write(out)
    pdf = out.getvalue()
    reference = PdfReader(BytesIO(pdf))
    reference._override_encryption = True
    ref = reference.trailer.raw_get("/Encrypt")
    expected = reference.get_object(ref)
    quick = _hex_strings_decoded(reference, pdf, ref)
    assert quick is not None
    assert {k: (type(v), v) for k, v in quick.items()} == {
        k: (type(v), v) for k, v in expected.items()
    }
