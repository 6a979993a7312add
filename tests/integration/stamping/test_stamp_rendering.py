"""Rendered pages show the seal upright and scannable inside the rectangle; nothing else changes."""

from __future__ import annotations

from io import BytesIO

import pytest
from pypdf import PdfReader

from meterai_stamping.engine import Rect, inspect
from tests.integration.stamping.validators import Gray, decode_qr, render, render_mupdf
from tests.unit.stamping.samples import (
    CORPUS,
    SEAL,
    PageSpec,
    assemble_pdf,
    build_pdf,
    stamp_and_sign,
)

_CROP = (50.0, 60.0, 500.0, 700.0)


def _corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


_SAMPLES: dict[str, tuple[bytes, int, Rect]] = {
    "jpeg.pdf": (_corpus("jpeg.pdf"), 1, Rect(380, 40, 560, 112)),
    "pdflatex-4-pages.pdf p3": (_corpus("pdflatex-4-pages.pdf"), 3, Rect(60, 700, 240, 772)),
    "google-doc-document.pdf": (_corpus("google-doc-document.pdf"), 1, Rect(40, 40, 112, 152)),
    "crazyones-pdfa.pdf": (_corpus("crazyones-pdfa.pdf"), 1, Rect(400, 600, 480, 680)),
    **{
        f"rotate {r} with CropBox": (
            build_pdf([PageSpec(crop=_CROP, rotate=r)]),
            1,
            Rect(30, 50, 210, 122),
        )
        for r in (90, 180, 270)
    },
}  # fmt: skip


def _pixel_box(rect: Rect, page_height: float, dpi: int, grow: int) -> tuple[int, int, int, int]:
    k = dpi / 72
    return (
        int(rect.x0 * k) - grow,
        int((page_height - rect.y1) * k) - grow,
        int(rect.x1 * k + 0.999) + grow,
        int((page_height - rect.y0) * k + 0.999) + grow,
    )


def _inside(x: int, y: int, box: tuple[int, int, int, int]) -> bool:
    return box[0] <= x < box[2] and box[1] <= y < box[3]


@pytest.mark.parametrize("sample", sorted(_SAMPLES))
def test_seal_is_drawn_inside_the_rectangle_and_nothing_outside_changes(sample: str) -> None:
    original, page, rect = _SAMPLES[sample]
    stamped = stamp_and_sign(original, page=page, rect=rect)
    height = inspect(original).page_sizes[page - 1].height
    before, after = render(original, page, 72), render(stamped, page, 72)
    assert (before.width, before.height) == (after.width, after.height)
    box = _pixel_box(rect, height, 72, grow=1)
    changed_outside = [
        (x, y)
        for y in range(after.height)
        for x in range(after.width)
        if not _inside(x, y, box) and before.at(x, y) != after.at(x, y)
    ]
    assert changed_outside == []
    inner = _pixel_box(rect, height, 72, grow=0)
    dark = sum(1 for p in after.crop(*inner).pixels if p < 128)
    assert dark > 0.05 * (inner[2] - inner[0]) * (inner[3] - inner[1])


@pytest.mark.parametrize("sample", sorted(_SAMPLES))
def test_rendered_seal_decodes_upright_to_the_verify_url(sample: str) -> None:
    original, page, rect = _SAMPLES[sample]
    stamped = stamp_and_sign(original, page=page, rect=rect)
    height = inspect(original).page_sizes[page - 1].height
    image: Gray = render(stamped, page, 300)
    seal = image.crop(*_pixel_box(rect, height, 300, grow=4))
    barcode = decode_qr(seal)
    assert barcode is not None and barcode.text == SEAL.verify_url
    assert barcode.orientation == 0


def _widgets_with_stored_appearance(pdf: bytes) -> list[Rect]:
    page = PdfReader(BytesIO(pdf)).pages[0]
    rects = []
    for ref in page.get("/Annots") or []:
        annot = ref.get_object()
        if annot.get("/Subtype") == "/Widget" and "/AP" in annot:
            x0, y0, x1, y1 = (float(v) for v in annot["/Rect"])
            rects.append(Rect(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return rects


@pytest.mark.parametrize("name", ["form.pdf", "pdflatex-forms.pdf", "reportlab-overlay.pdf"])
def test_seal_shows_on_forms_that_ask_viewers_to_redraw_fields(name: str) -> None:
    """``/NeedAppearances true`` made poppler redraw the seal as an empty box, so the update
    clears it, as signing software does.  Fields without an appearance stream are still drawn
    from their value and look exactly as before; a field with a stored appearance shows that
    instead of poppler's own redraw, so it may change within its own rectangle only."""
    original = _corpus(name)
    rect = Rect(300, 40, 480, 112)
    stamped = stamp_and_sign(original, rect=rect)
    height = inspect(original).page_sizes[0].height
    before, after = render(original, 1, 72), render(stamped, 1, 72)
    allowed = [
        _pixel_box(r, height, 72, grow=1)
        for r in [rect, *_widgets_with_stored_appearance(original)]
    ]
    changed_outside = [
        (x, y)
        for y in range(after.height)
        for x in range(after.width)
        if not any(_inside(x, y, box) for box in allowed) and before.at(x, y) != after.at(x, y)
    ]
    assert changed_outside == []
    for renderer in (render, render_mupdf):
        page = renderer(stamped, 1, 300)
        barcode = decode_qr(page.crop(*_pixel_box(rect, height, 300, grow=4)))
        assert barcode is not None and barcode.text == SEAL.verify_url, renderer
    assert b"/NeedAppearances" not in stamped[len(original) :]


def _text_page() -> bytes:
    """A page covered in dark body text, lines 12 pt apart, from top to bottom."""
    rows = b" ".join(
        b"BT /F1 11 Tf 20 %d Td (%s) Tj ET" % (y, b"PASAL 7 PARA PIHAK SEPAKAT " * 4)
        for y in range(10, 842, 12)
    )
    return assemble_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
            4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            5: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(rows), rows),
        }
    )


def test_the_seal_is_opaque_so_it_reads_the_same_over_body_text() -> None:
    """Rendered at 100 dpi, the seal's pixels over a page of text are exactly those over a
    blank page: nothing shows through the value or the serial, and the QR code decodes."""
    rect = Rect(60, 300, 276, 386)
    blank = build_pdf([PageSpec(text="")])
    busy = _text_page()
    under = _pixel_box(rect, 842, 100, grow=0)
    assert sum(p < 128 for p in render(busy, 1, 100).crop(*under).pixels) > 500
    alone = render(stamp_and_sign(blank, rect=rect), 1, 100)
    over = render(stamp_and_sign(busy, rect=rect), 1, 100)
    inner = _pixel_box(rect, 842, 100, grow=-2)
    assert alone.crop(*inner).pixels == over.crop(*inner).pixels
    barcode = decode_qr(over.crop(*_pixel_box(rect, 842, 100, grow=4)))
    assert barcode is not None and barcode.text == SEAL.verify_url
