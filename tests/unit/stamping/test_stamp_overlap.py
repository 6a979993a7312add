"""A new seal never covers an e-meterai already on the page: refused with free space, or moved."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from pypdf import PdfReader

from meterai_stamping.engine import Rect, Seal, SealOverlaps, prepare
from meterai_stamping.engine.geometry import PageGeometry, place
from meterai_stamping.engine.overlap import displayed_rect
from tests.unit.stamping.samples import (
    SIGNATURE_SIZE,
    SIGNING_TIME,
    PageSpec,
    build_pdf,
    stamp_and_sign,
)

_OTHER = Seal("MTRAI0000000000000BBBB", "https://verify.example/v/MTRAI0000000000000BBBB")


def _second(pdf: bytes, rect: Rect, *, move: bool = False) -> bytes:
    return prepare(
        pdf,
        page=1,
        rect=rect,
        seal=_OTHER,
        signature_size=SIGNATURE_SIZE,
        signing_time=SIGNING_TIME,
        reason="second",
        move_if_overlapping=move,
    ).data


def _free_rect(message: str) -> Rect:
    found = re.search(r"free area of the same size: \((\d+), (\d+)\)-\((\d+), (\d+)\)", message)
    assert found, message
    return Rect(*(float(v) for v in found.groups()))


def test_a_seal_over_an_existing_one_is_refused_naming_it_and_free_space() -> None:
    once = stamp_and_sign(build_pdf(), rect=Rect(40, 40, 220, 112))
    with pytest.raises(
        SealOverlaps, match=r"already carries an e-meterai at \(40, 40\)-\(220, 112\)"
    ) as caught:
        _second(once, Rect(100, 60, 280, 132))
    assert caught.value.code == "FAILED_PRECONDITION"
    free = _free_rect(caught.value.message)
    assert (free.width, free.height) == (180, 72)
    assert free.x0 >= 220 or free.y0 >= 112 or free.x1 <= 40 or free.y1 <= 40
    assert _second(once, free).startswith(once)


def test_the_seal_is_moved_to_the_nearest_free_space_when_allowed() -> None:
    once = stamp_and_sign(build_pdf(), rect=Rect(40, 40, 220, 112))
    twice = _second(once, Rect(40, 40, 220, 112), move=True)
    widgets = [a.get_object() for a in PdfReader(BytesIO(twice)).pages[0]["/Annots"]]
    (a, b) = [[float(v) for v in w["/Rect"]] for w in widgets]
    assert a == [40, 40, 220, 112] and b != a
    assert b[1] >= 112 or b[0] >= 220


def test_seals_on_a_rotated_page_are_found_where_the_user_sees_them() -> None:
    pdf = build_pdf([PageSpec(rotate=90, crop=(20, 30, 580, 800))])
    once = stamp_and_sign(pdf, rect=Rect(40, 40, 220, 112))
    with pytest.raises(SealOverlaps, match=r"at \(40, 40\)-\(220, 112\)"):
        _second(once, Rect(50, 50, 230, 122))


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_displayed_rect_inverts_place(rotate: int) -> None:
    geometry = PageGeometry.from_boxes((0, 0, 595, 842), (10, 20, 500, 800), rotate, 2.0)
    rect = Rect(30, 50, 210, 122)
    back = displayed_rect(geometry, place(geometry, rect).annotation_rect)
    assert (back.x0, back.y0, back.x1, back.y1) == pytest.approx((30, 50, 210, 122))
