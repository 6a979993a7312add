"""Embedding the CMS into the placeholder reserved by ``prepare``."""

from __future__ import annotations

import pytest

from meterai_stamping.engine import (
    InvalidPlaceholder,
    Rect,
    SignatureTooLarge,
    embed_signature,
    placeholder_of,
)
from tests.unit.stamping.samples import SIGNATURE_SIZE, build_pdf, prepare_seal


def test_cms_fills_the_placeholder_without_moving_a_byte() -> None:
    prepared = prepare_seal(build_pdf())
    cms = bytes(range(256)) * 4
    signed = embed_signature(prepared.data, prepared.contents_start, prepared.contents_end, cms)
    assert type(signed) is bytes and len(signed) == len(prepared.data)
    _, b, c, _ = prepared.byte_range
    assert signed[:b] == prepared.data[:b] and signed[c:] == prepared.data[c:]
    hex_part = signed[prepared.contents_start : prepared.contents_end]
    assert bytes.fromhex(hex_part.decode())[: len(cms)] == cms
    assert hex_part[2 * len(cms) :].strip(b"0") == b""


def test_cms_exactly_as_large_as_reserved_fits() -> None:
    prepared = prepare_seal(build_pdf())
    embed_signature(
        prepared.data, prepared.contents_start, prepared.contents_end, b"\x30" * SIGNATURE_SIZE
    )


def test_cms_larger_than_reserved_is_refused_with_both_sizes() -> None:
    prepared = prepare_seal(build_pdf())
    with pytest.raises(SignatureTooLarge, match=f"{SIGNATURE_SIZE:,} bytes were reserved"):
        embed_signature(
            prepared.data,
            prepared.contents_start,
            prepared.contents_end,
            b"\x30" * (SIGNATURE_SIZE + 1),
        )


def test_offsets_that_do_not_frame_the_placeholder_are_refused() -> None:
    prepared = prepare_seal(build_pdf())
    with pytest.raises(InvalidPlaceholder):
        embed_signature(prepared.data, prepared.contents_start + 1, prepared.contents_end, b"0")
    with pytest.raises(InvalidPlaceholder):
        embed_signature(prepared.data, 10, 20, b"0")


def test_the_placeholder_is_found_again_in_the_prepared_file_alone() -> None:
    """A finishing process that did not prepare the document needs nothing but its bytes."""
    once = prepare_seal(build_pdf())
    twice = prepare_seal(
        embed_signature(once.data, once.contents_start, once.contents_end, b"0"),
        rect=Rect(300, 40, 480, 112),
    )
    for prepared in (once, twice):  # a stamped file stamped again: the newest placeholder
        assert placeholder_of(prepared.data) == (prepared.contents_start, prepared.contents_end)


def test_a_file_without_a_filled_placeholder_has_none_to_find() -> None:
    with pytest.raises(InvalidPlaceholder):
        placeholder_of(build_pdf())


def test_embedding_into_the_prepared_document_gives_the_same_file_as_into_its_bytes() -> None:
    original = build_pdf()
    prepared = prepare_seal(original)
    cms = bytes(range(256)) * 4
    start, end = prepared.contents_start, prepared.contents_end
    from_parts = embed_signature(prepared, start, end, cms)
    assert from_parts == embed_signature(prepared.data, start, end, cms)
    assert type(from_parts) is bytes and from_parts.startswith(original)
    assert prepared.data == prepared.original + prepared.update


def test_offsets_inside_the_original_are_refused_for_a_prepared_document() -> None:
    prepared = prepare_seal(build_pdf())
    with pytest.raises(InvalidPlaceholder):
        embed_signature(prepared, 10, 20, b"0")
