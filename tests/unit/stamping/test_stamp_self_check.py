"""``check_stamped`` passes every good output and names what is wrong with a bad one."""

from __future__ import annotations

import re

import pytest

from meterai_stamping.engine import Rect, UnverifiableStamp, check_stamped
from tests.unit.stamping.samples import CORPUS, STAMPABLE, build_pdf, stamp_and_sign


@pytest.mark.parametrize("name", STAMPABLE)
def test_every_signed_corpus_output_passes(name: str) -> None:
    check_stamped(stamp_and_sign((CORPUS / name).read_bytes()))


@pytest.mark.parametrize("style", ["table", "stream", "hybrid"])
def test_outputs_stamped_twice_pass(style: str) -> None:
    check_stamped(
        stamp_and_sign(stamp_and_sign(build_pdf(xref=style)), rect=Rect(300, 40, 480, 112))
    )


def _signed(style: str = "table") -> bytes:
    return stamp_and_sign(build_pdf(xref=style))


def test_a_file_cut_short_fails() -> None:
    signed = _signed()
    with pytest.raises(UnverifiableStamp, match="/ByteRange") as caught:
        check_stamped(signed[:-10])
    assert caught.value.code == "INTERNAL"
    assert "Nothing was charged" in caught.value.message


def test_bytes_appended_after_signing_fail() -> None:
    with pytest.raises(UnverifiableStamp, match="whole file"):
        check_stamped(_signed() + b"% trailing garbage\n")


def test_an_unsigned_placeholder_fails() -> None:
    signed = _signed()
    start = signed.rindex(b"/Contents <") + len(b"/Contents <")
    end = signed.index(b">", start)
    blank = signed[:start] + b"0" * (end - start) + signed[end:]
    with pytest.raises(UnverifiableStamp, match="no DER-encoded CMS"):
        check_stamped(blank)


def test_a_cross_reference_row_off_by_one_fails() -> None:
    signed = _signed()
    rows = list(re.finditer(rb"(\d{10}) 00000 n\r\n", signed))
    last = rows[-1]
    moved = b"%010d" % (int(last.group(1)) + 1)
    broken = signed[: last.start()] + moved + signed[last.start() + 10 :]
    with pytest.raises(UnverifiableStamp, match="cross-reference chain is not sound"):
        check_stamped(broken)


def test_a_widget_missing_from_the_form_fails() -> None:
    signed = _signed()
    at = signed.rindex(b"/Fields [")
    broken = signed[:at] + b"/Fielda [" + signed[at + len(b"/Fields [") :]
    with pytest.raises(UnverifiableStamp, match="/Fields"):
        check_stamped(broken)
