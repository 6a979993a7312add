"""The update section: appended, in the file's own cross-reference style, and repairing damage."""

from __future__ import annotations

import re

import pytest

from meterai_stamping.engine import Rect
from tests.unit.stamping.samples import CORPUS, PageSpec, build_pdf, prepare_seal


def _update_section(original: bytes, stamped: bytes) -> bytes:
    assert stamped.startswith(original)
    return stamped[len(original) :]


def test_classic_file_gets_a_classic_table_chained_with_prev() -> None:
    original = build_pdf(xref="table")
    section = _update_section(original, prepare_seal(original).data)
    assert b"\nxref\n" in section and b"/Type /XRef" not in section
    previous = int(re.findall(rb"startxref\s+(\d+)", original)[-1])
    assert b"/Prev %d" % previous in section


def test_hybrid_file_gets_a_hybrid_section_chained_with_prev() -> None:
    original = build_pdf(xref="hybrid")
    section = _update_section(original, prepare_seal(original).data)
    previous = int(re.findall(rb"startxref\s+(\d+)", original)[-1])
    trailer = section[section.rindex(b"trailer") :]
    assert b"/Prev %d" % previous in trailer
    stream_at = int(re.search(rb"/XRefStm (\d+)", trailer).group(1))  # type: ignore[union-attr]
    stamped = original + section
    assert re.match(rb"\d+ 0 obj\n<< /Type /XRef ", stamped[stream_at:])
    assert b"startxref" not in stamped[stream_at : stamped.index(b"\nxref\n", stream_at)]


@pytest.mark.parametrize("style", ["table", "stream", "hybrid"])
def test_the_engines_own_output_is_stamped_again_without_repair(style: str) -> None:
    once = prepare_seal(build_pdf(xref=style)).data
    twice = prepare_seal(once, rect=Rect(300, 40, 480, 112)).data
    section = _update_section(once, twice)
    previous = int(re.findall(rb"startxref\s+(\d+)", once)[-1])
    assert b"/Prev %d" % previous in section


def test_file_ending_in_an_xref_stream_gets_an_xref_stream() -> None:
    original = build_pdf(xref="stream")
    section = _update_section(original, prepare_seal(original).data)
    assert b"/Type /XRef" in section and b"\nxref\n" not in section


def test_object_streams_from_pdftex_are_read_without_rewriting_them() -> None:
    original = (CORPUS / "minimal-document.pdf").read_bytes()
    section = _update_section(original, prepare_seal(original).data)
    assert b"/Type /XRef" in section and b"/ObjStm" not in section


@pytest.mark.parametrize("name", ["toy.pdf", "issue-297.pdf"])
def test_damaged_cross_references_are_replaced_by_a_complete_table(name: str) -> None:
    original = (CORPUS / name).read_bytes()
    section = _update_section(original, prepare_seal(original).data)
    assert b"/Prev" not in section
    assert re.search(rb"xref\n0 \d+\n0000000000 65535 f", section)


@pytest.mark.parametrize("target", [b"3 0 obj", b"%PDF"])
def test_table_entry_pointing_away_from_its_object_is_damage_even_if_never_read(
    target: bytes,
) -> None:
    original = build_pdf([PageSpec(), PageSpec()])
    # Object 7 is page 2's content stream: stamping page 1 never reads it.
    rows = re.search(rb"\nxref\n0 \d+\n", original)
    assert rows is not None
    row = rows.end() + 20 * 7
    broken = original[:row] + b"%010d" % original.index(target) + original[row + 10 :]
    section = _update_section(broken, prepare_seal(broken).data)
    assert b"/Prev" not in section
    assert re.search(rb"xref\n0 \d+\n0000000000 65535 f", section)


def test_an_object_header_spelled_across_lines_is_sound_not_damage() -> None:
    original = build_pdf([PageSpec(), PageSpec()])
    assert original.count(b"\n7 0 obj\n") == 1
    # Same length, so every offset stays right; only the exact "N 0 obj" comparison misses it.
    respelled = original.replace(b"\n7 0 obj\n", b"\n7 0\nobj\n")
    section = _update_section(respelled, prepare_seal(respelled).data)
    assert b"/Prev" in section


def test_sound_table_is_chained_not_repeated() -> None:
    original = build_pdf([PageSpec(text=f"page {i}") for i in range(20)])
    section = _update_section(original, prepare_seal(original).data)
    # Only object 0's row opens the table (as Acrobat writes it), then the revised objects.
    assert re.search(rb"xref\n0 1\n0000000000 65535 f", section)
    assert len(re.findall(rb"\d{10} \d{5} n", section)) < 10


def test_update_rewrites_only_the_target_page_and_the_form_root() -> None:
    original = build_pdf([PageSpec(text=f"page {i}") for i in range(50)])
    section = _update_section(original, prepare_seal(original, page=30).data)
    numbers = sorted(int(n) for n in re.findall(rb"(\d+) 0 obj", section))
    target_page = 4 + 2 * 29
    # signature, appearance, widget, new AcroForm, plus new revisions of the page and the catalog
    assert numbers == [1, target_page, *range(104, 108)]


def test_a_damaged_originals_stream_with_a_wrong_length_gets_a_revision_with_the_right_one() -> (
    None
):
    original = (CORPUS / "issue-297.pdf").read_bytes()
    section = _update_section(original, prepare_seal(original).data)
    revised = re.search(rb"\n5 0 obj\n<<(.*?)>>\nstream\n(.*?)\nendstream", section, re.S)
    assert revised is not None
    length = int(re.search(rb"/Length (\d+)", revised.group(1)).group(1))  # type: ignore[union-attr]
    assert length == len(revised.group(2))
    assert revised.group(2) in original


def test_sound_files_get_no_stream_repairs() -> None:
    original = build_pdf()
    section = _update_section(original, prepare_seal(original).data)
    assert b"\n5 0 obj" not in section
