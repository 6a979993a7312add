"""Every corpus document is stamped, or refused for the reason MANIFEST.md gives."""

from __future__ import annotations

import hashlib
from io import BytesIO

import pytest
from pypdf import PdfReader

from meterai_stamping.engine import StampError
from tests.unit.stamping.samples import (
    CORPUS,
    CORPUS_EXPECTATIONS,
    SIGNATURE_SIZE,
    STAMPABLE,
    prepare_seal,
)


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTATIONS))
def test_corpus_document_is_stamped_or_refused_as_the_manifest_expects(name: str) -> None:
    original = (CORPUS / name).read_bytes()
    expected = CORPUS_EXPECTATIONS[name]
    if expected is None:
        prepared = prepare_seal(original)
        assert prepared.data.startswith(original)
    else:
        with pytest.raises(expected) as caught:
            prepare_seal(original)
        assert caught.value.message


@pytest.mark.parametrize("name", STAMPABLE)
def test_digest_covers_everything_but_the_contents_placeholder(name: str) -> None:
    prepared = prepare_seal((CORPUS / name).read_bytes())
    a, b, c, d = prepared.byte_range
    data = prepared.data
    assert (a, b) == (0, prepared.contents_start - 1)
    assert c == prepared.contents_end + 1 and c + d == len(data)
    assert data[b:c] == b"<" + b"0" * (2 * SIGNATURE_SIZE) + b">"
    assert prepared.digest == hashlib.sha256(data[:b] + data[c:]).digest()


@pytest.mark.parametrize("name", STAMPABLE)
def test_stamped_document_reopens_with_one_more_signature_field(name: str) -> None:
    original = (CORPUS / name).read_bytes()
    before = PdfReader(BytesIO(original)).get_fields() or {}
    reader = PdfReader(BytesIO(prepare_seal(original).data))
    fields = reader.get_fields() or {}
    assert set(before) < set(fields)
    assert len(reader.pages) == len(PdfReader(BytesIO(original)).pages)


def test_every_error_carries_a_grpc_code() -> None:
    codes = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED"}
    for error in CORPUS_EXPECTATIONS.values():
        if error is not None:
            assert issubclass(error, StampError) and error.code in codes
