"""The seal lands in the displayed rectangle, upright, whatever the page's rotation and boxes."""

from __future__ import annotations

from io import BytesIO

import pytest
from pypdf import PdfReader

from meterai_stamping.engine import PageSize, Rect, inspect
from meterai_stamping.engine.geometry import PageGeometry, place
from tests.unit.stamping.samples import CORPUS, PageSpec, build_pdf, prepare_seal

_CROP = (50.0, 60.0, 500.0, 700.0)  # 450 x 640 visible


@pytest.mark.parametrize(
    ("rotate", "expected_rect", "expected_matrix"),
    [
        (0, (90, 100, 270, 172), (1, 0, 0, 1)),
        (90, (388, 100, 460, 280), (0, 1, -1, 0)),
        (180, (280, 588, 460, 660), (-1, 0, 0, -1)),
        (270, (90, 480, 162, 660), (0, -1, 1, 0)),
    ],
)
def test_displayed_rectangle_maps_into_user_space_for_each_rotation(
    rotate: int,
    expected_rect: tuple[float, ...],
    expected_matrix: tuple[float, ...],
) -> None:
    geometry = PageGeometry.from_boxes((0, 0, 595, 842), _CROP, rotate, 1.0)
    placement = place(geometry, Rect(40, 40, 220, 112))
    assert placement.annotation_rect == pytest.approx(expected_rect)
    assert placement.matrix[:4] == pytest.approx(expected_matrix)


def test_user_unit_scales_displayed_points_to_user_units() -> None:
    geometry = PageGeometry.from_boxes((0, 0, 100, 100), None, 0, 2.0)
    assert geometry.displayed_size == PageSize(200, 200)
    placement = place(geometry, Rect(20, 20, 120, 80))
    assert placement.annotation_rect == pytest.approx((10, 10, 60, 40))
    assert placement.matrix[:4] == pytest.approx((0.5, 0, 0, 0.5))


def test_crop_box_is_clipped_to_the_media_box_and_odd_rotation_ignored() -> None:
    geometry = PageGeometry.from_boxes((0, 0, 200, 200), (-50, -50, 100, 300), 45, 1.0)
    assert geometry.crop == (0, 0, 100, 200)
    assert geometry.rotate == 0


def test_widget_rect_in_the_file_follows_rotation_and_crop_box() -> None:
    pdf = build_pdf([PageSpec(crop=_CROP, rotate=90)])
    reader = PdfReader(BytesIO(prepare_seal(pdf).data))
    widget = reader.pages[0]["/Annots"][-1].get_object()
    assert [float(v) for v in widget["/Rect"]] == pytest.approx([388, 100, 460, 280])
    appearance = widget["/AP"]["/N"]
    assert [float(v) for v in appearance["/BBox"]] == pytest.approx([0, 0, 180, 72])


def test_inspect_reports_sizes_as_displayed() -> None:
    pdf = build_pdf([PageSpec(), PageSpec(rotate=270), PageSpec(crop=_CROP), PageSpec(user_unit=2)])
    info = inspect(pdf)
    assert info.page_count == 4
    assert info.page_sizes == (
        PageSize(595, 842),
        PageSize(842, 595),
        PageSize(450, 640),
        PageSize(1190, 1684),
    )


def test_inspect_of_a_corpus_document_agrees_with_pdfinfo() -> None:
    info = inspect((CORPUS / "two-different-pages.pdf").read_bytes())
    assert info.page_sizes == (PageSize(596, 842), PageSize(596, 842))
