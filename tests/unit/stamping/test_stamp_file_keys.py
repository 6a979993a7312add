"""Opening AES-256 documents: the file key is derived once per document and password."""

from __future__ import annotations

from io import BytesIO

import pytest
from pypdf import PdfWriter

from meterai_stamping.engine import EncryptedPdf, inspect
from meterai_stamping.engine.file_keys import forget_file_keys
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
