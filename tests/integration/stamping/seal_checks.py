"""One verdict on a stamped file, from validators the project did not write.

:func:`assert_seals_hold` is what every "it stamps" test asserts: each seal's
signature validates in pdfsig and pyHanko and in the platform's own verifier,
``qpdf --check`` finds no error, and the rendered page shows each seal's QR
code, decoding to its verify URL, inside its rectangle (poppler, and MuPDF).
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

import zxingcpp
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pypdf import PasswordType, PdfReader

from meterai_stamping.engine import Rect, Seal, inspect
from meterai_verify.pdf_check import check_pdf
from tests.integration.stamping.validators import (
    Gray,
    decode_qr,
    pyhanko_statuses,
    render,
    render_mupdf,
    run_pdfsig,
    run_qpdf_check,
)
from tests.unit.stamping.samples import session_signer

__all__ = ["Placed", "assert_seals_hold", "pixel_box"]

_DPI = 150


@dataclass(frozen=True)
class Placed:
    """A seal the test stamped, and where."""

    seal: Seal
    page: int
    rect: Rect

    @property
    def field(self) -> str:
        return f"e-meterai {self.seal.serial}"


def pixel_box(rect: Rect, page_height: float, dpi: int, grow: int) -> tuple[int, int, int, int]:
    """The rectangle in rendered pixels (origin top-left), grown by *grow* pixels each side."""
    k = dpi / 72
    return (
        max(0, int(rect.x0 * k) - grow),
        max(0, int((page_height - rect.y1) * k) - grow),
        int(rect.x1 * k + 0.999) + grow,
        int((page_height - rect.y0) * k + 0.999) + grow,
    )


def assert_seals_hold(
    signed: bytes,
    placed: list[Placed],
    *,
    password: str | None = None,
    qpdf_clean: bool = True,
    earlier: int = 0,
) -> None:
    """Every seal in *placed* validates everywhere and is visible where it was put.

    :param password: for encrypted outputs; validators need it to read the file.
    :param qpdf_clean: the original passed ``qpdf --check`` without warnings, so the
        output must too (a damaged original may keep its warnings, never errors).
    :param earlier: signatures the original already carried, which must still hold.
    """
    total = len(placed) + earlier
    report = run_pdfsig(signed, password=password)
    assert report.count("Signature #") == total, report
    assert report.count("Signature is Valid") == total, report
    assert "Total document signed" in report.split("Signature #")[-1], report
    statuses = pyhanko_statuses(signed, password=password)
    assert len(statuses) == total, statuses
    for index, item in enumerate(placed):
        status = statuses[item.field]
        assert status.intact and status.valid and status.trusted, (item.field, status)
        if index == len(placed) - 1:
            assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        else:
            assert status.modification_level is not None
            assert status.docmdp_ok, status
            assert status.modification_level <= ModificationLevel.ANNOTATIONS, status
    qpdf = run_qpdf_check(signed, password=password)
    assert qpdf != 2 and (qpdf == 0 or not qpdf_clean), qpdf
    root = session_signer().certificate.dump()
    verdict = check_pdf(signed, [root], password or None)
    by_serial = {check.serial: check for check in verdict.signatures}
    for item in placed:
        check = by_serial[item.seal.serial]
        assert check.ok, check
    _assert_qr_codes_where_placed(signed, placed, password)


def _assert_qr_codes_where_placed(
    signed: bytes, placed: list[Placed], password: str | None
) -> None:
    """Each seal's QR code decodes inside its rectangle, once on the page, in poppler's
    rendering; in MuPDF's too when the file opens without a password."""
    sizes = inspect(signed, password=password).page_sizes
    for page in sorted({p.page for p in placed}):
        images = [render(signed, page, _DPI, password=password)]
        if not password and _viewers_open_without_asking(signed):
            images.append(render_mupdf(signed, page, _DPI))
        here = [p for p in placed if p.page == page]
        for image in images:
            found = _all_qr_texts(image)
            for item in here:
                box = pixel_box(item.rect, sizes[page - 1].height, _DPI, grow=3)
                barcode = decode_qr(image.crop(*box))
                assert barcode is not None and barcode.text == item.seal.verify_url, item
                assert found.count(item.seal.verify_url) == 1, (item, found)


def _viewers_open_without_asking(pdf: bytes) -> bool:
    """Unencrypted, or encrypted with an empty *user* password. MuPDF, like most viewers,
    does not try the empty string as an owner password (r6-user-password.pdf needs that)."""
    reader = PdfReader(BytesIO(pdf))
    return not reader.is_encrypted or reader.decrypt("") == PasswordType.USER_PASSWORD


def _all_qr_texts(image: Gray) -> list[str]:
    view = zxingcpp.ImageView(
        memoryview(image.pixels).cast("B", (image.height, image.width)),
        image.width,
        image.height,
        zxingcpp.ImageFormat.Lum,
    )
    return [b.text for b in zxingcpp.read_barcodes(view, formats=zxingcpp.BarcodeFormat.QRCode)]
