"""Running external validators on stamped documents: pdfsig, qpdf, pdftoppm, zxing and pyHanko."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from io import BytesIO

import zxingcpp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from tests.unit.stamping.samples import session_signer

__all__ = [
    "Gray",
    "decode_qr",
    "pyhanko_statuses",
    "render",
    "render_mupdf",
    "run_pdfsig",
    "run_qpdf_check",
]


@dataclass(frozen=True)
class Gray:
    """A grayscale rendering: one byte per pixel, 255 is white."""

    width: int
    height: int
    pixels: bytes

    def at(self, x: int, y: int) -> int:
        return self.pixels[y * self.width + x]

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> Gray:
        rows = [self.pixels[y * self.width + x0 : y * self.width + x1] for y in range(y0, y1)]
        return Gray(x1 - x0, y1 - y0, b"".join(rows))


def run_pdfsig(pdf: bytes, *, password: str | None = None) -> str:
    """pdfsig's report; encrypted files need the (user or owner) password to be read."""
    args = ["-upw", password] if password else []
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        return subprocess.run(
            ["pdfsig", *args, f.name], capture_output=True, text=True, check=False, timeout=60
        ).stdout


def run_qpdf_check(pdf: bytes, *, password: str | None = None) -> int:
    """qpdf's exit status: 0 clean, 3 warnings only, 2 errors."""
    args = [f"--password={password}"] if password else []
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        return subprocess.run(
            ["qpdf", *args, "--check", f.name], capture_output=True, check=False, timeout=60
        ).returncode


def render(pdf: bytes, page: int, dpi: int, *, password: str | None = None) -> Gray:
    """Render one page, CropBox only, as the user sees it."""
    args = ["-upw", password] if password else []
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        pgm = subprocess.run(
            [
                "pdftoppm",
                *args,
                "-r",
                str(dpi),
                "-gray",
                "-cropbox",
                "-f",
                str(page),
                "-l",
                str(page),
                f.name,
            ],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", pgm)
    assert header is not None
    width, height = int(header.group(1)), int(header.group(2))
    return Gray(width, height, pgm[header.end() :])


def render_mupdf(pdf: bytes, page: int, dpi: int) -> Gray:
    """Render one page with MuPDF (``mutool draw``), the second renderer the tests trust."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = f"{folder}/in.pdf", f"{folder}/out.pgm"
        with open(source, "wb") as f:
            f.write(pdf)
        subprocess.run(
            ["mutool", "draw", "-q", "-r", str(dpi), "-c", "gray", "-o", target, source, str(page)],
            capture_output=True,
            check=True,
            timeout=60,
        )
        with open(target, "rb") as f:
            pgm = f.read()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", pgm)
    assert header is not None
    width, height = int(header.group(1)), int(header.group(2))
    return Gray(width, height, pgm[header.end() :])


def decode_qr(image: Gray) -> zxingcpp.Barcode | None:
    view = zxingcpp.ImageView(
        memoryview(image.pixels).cast("B", (image.height, image.width)),
        image.width,
        image.height,
        zxingcpp.ImageFormat.Lum,
    )
    return zxingcpp.read_barcode(view, formats=zxingcpp.BarcodeFormat.QRCode)


def pyhanko_statuses(pdf: bytes, *, password: str | None = None) -> dict[str, PdfSignatureStatus]:
    """Validate every signature, trusting only the test signer.

    pyHanko reads encrypted files only once decrypted; without a password the
    empty user password is tried, as every viewer does.
    """
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    if reader.encrypted:
        reader.decrypt((password or "").encode())
    context = ValidationContext(trust_roots=[session_signer().certificate])
    return {
        str(sig.field_name): validate_pdf_signature(sig, context)
        for sig in reader.embedded_signatures
    }
