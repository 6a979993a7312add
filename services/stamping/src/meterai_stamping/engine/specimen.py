"""The issuer's own specimen artwork as the seal, with the QR code and serial placed on it.

A real e-meterai is an issuer-designed specimen that people recognise at a
glance; the platform's drawn card (:mod:`~meterai_stamping.engine.appearance`)
is only the default.  A :class:`Specimen` is the artwork, either a PDF
content stream (vector art, as a form XObject's content) or a JPEG image,
plus the two boxes, in the artwork's own units, where the QR code and the
serial go.  The artwork is scaled uniformly into the seal rectangle and
centred; the QR code gets a white square in its box, the serial is fitted
into its box in black Helvetica on white, legible whatever the artwork.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from pypdf.generic import DictionaryObject, IndirectObject, NameObject, read_object

from .appearance import _escape, _num
from .font_metrics import text_width
from .qr import QUIET_ZONE, QrSymbol

__all__ = [
    "IMAGE_NAME",
    "Specimen",
    "SpecimenPlacement",
    "image_object",
    "place_specimen",
    "specimen_content",
    "specimen_resources",
]

IMAGE_NAME = b"/Spesimen"
"""Resource name of a JPEG specimen in the appearance stream."""


@dataclass(frozen=True)
class Specimen:
    """Issuer artwork for the seal.

    Give exactly one of :attr:`content` and :attr:`jpeg`.
    """

    width: float
    """Width of the artwork in its own units (its bounding box is ``[0 0 width height]``)."""
    height: float
    """Height of the artwork."""
    qr_box: tuple[float, float, float, float]
    """``(x0, y0, x1, y1)`` in artwork units where the QR code (quiet zone included) goes."""
    serial_box: tuple[float, float, float, float]
    """``(x0, y0, x1, y1)`` in artwork units where the serial is printed."""
    content: bytes = b""
    """Vector artwork: a PDF content stream using only :attr:`resources`."""
    resources: bytes = b"<<>>"
    """Inline resource dictionary the content stream needs (no indirect references)."""
    jpeg: bytes = b""
    """Raster artwork: a baseline JPEG (DCTDecode) of :attr:`jpeg_pixels`, RGB."""
    jpeg_pixels: tuple[int, int] = (0, 0)
    """``(width, height)`` of the JPEG in pixels."""

    def is_well_formed(self) -> bool:
        """Exactly one artwork, positive size, both boxes inside the artwork."""
        boxes_ok = all(
            0 <= b[0] < b[2] <= self.width and 0 <= b[1] < b[3] <= self.height
            for b in (self.qr_box, self.serial_box)
        )
        one_artwork = bool(self.content) != bool(self.jpeg)
        pixels_ok = not self.jpeg or min(self.jpeg_pixels) > 0
        return self.width > 0 and self.height > 0 and boxes_ok and one_artwork and pixels_ok


@dataclass(frozen=True)
class SpecimenPlacement:
    """How a specimen lands in a ``width x height`` seal rectangle."""

    scale: float
    offset: tuple[float, float]
    qr_side: float
    """Side of the QR square in artwork units, quiet zone included."""
    module: float
    """Side of one QR module in points on the page."""


def place_specimen(
    specimen: Specimen, width: float, height: float, qr: QrSymbol
) -> SpecimenPlacement:
    """Scale the artwork uniformly into the rectangle, centred."""
    scale = min(width / specimen.width, height / specimen.height)
    offset = ((width - specimen.width * scale) / 2, (height - specimen.height * scale) / 2)
    x0, y0, x1, y1 = specimen.qr_box
    side = min(x1 - x0, y1 - y0)
    return SpecimenPlacement(scale, offset, side, side * scale / qr.size_with_quiet_zone)


def specimen_content(
    specimen: Specimen, placement: SpecimenPlacement, qr: QrSymbol, serial: str
) -> bytes:
    """Content stream: the artwork, a white QR square with the code, and the serial."""
    s = placement.scale
    parts = [b"q ", _num(s), b" 0 0 ", _num(s), b" ", _num(placement.offset[0]), b" ",
             _num(placement.offset[1]), b" cm\n"]  # fmt: skip
    if specimen.jpeg:
        parts += [b"q ", _num(specimen.width), b" 0 0 ", _num(specimen.height), b" 0 0 cm ",
                  IMAGE_NAME, b" Do Q\n"]  # fmt: skip
    else:
        parts += [b"q\n", specimen.content, b"\nQ\n"]
    x0, y0, x1, y1 = specimen.qr_box
    side = placement.qr_side
    qx, qy = x0 + (x1 - x0 - side) / 2, y0 + (y1 - y0 - side) / 2
    module = side / qr.size_with_quiet_zone
    parts += [b"1 1 1 rg ", _num(qx), b" ", _num(qy), b" ", _num(side), b" ", _num(side),
              b" re f 0 0 0 rg q ", _num(module), b" 0 0 ", _num(module), b" ", _num(qx), b" ",
              _num(qy), b" cm\n"]  # fmt: skip
    top = qr.size - 1 + QUIET_ZONE
    parts.extend(
        b"%d %d %d 1 re\n" % (col + QUIET_ZONE, top - row, length) for row, col, length in qr.runs
    )
    parts.append(b"f Q\n")
    sx0, sy0, sx1, sy1 = specimen.serial_box
    natural = text_width(serial, "Helvetica", 1.0)
    size = min((sy1 - sy0) * 0.8, (sx1 - sx0) / natural if natural else sy1 - sy0)
    x = sx0 + (sx1 - sx0 - text_width(serial, "Helvetica", size)) / 2
    y = sy0 + (sy1 - sy0 - size) / 2 + size * 0.2
    parts += [b"1 1 1 rg ", _num(sx0), b" ", _num(sy0), b" ", _num(sx1 - sx0), b" ",
              _num(sy1 - sy0), b" re f "]  # fmt: skip
    parts += [b"BT 0 0 0 rg /MtrSerial ", _num(size), b" Tf 1 0 0 1 ", _num(x), b" ", _num(y),
              b" Tm (", _escape(serial), b") Tj ET\nQ"]  # fmt: skip
    return b"".join(parts)


def image_object(specimen: Specimen) -> bytes:
    """The JPEG specimen as an image XObject body."""
    w, h = specimen.jpeg_pixels
    return (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
        b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n"
        % (w, h, len(specimen.jpeg))
        + specimen.jpeg
        + b"\nendstream"
    )


_SERIAL_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def specimen_resources(specimen: Specimen, image: IndirectObject | None) -> bytes:
    """The artwork's resources plus the serial's font (and the JPEG, as ``/Spesimen``)."""
    parsed = read_object(BytesIO(specimen.resources), None)  # type: ignore[arg-type]
    resources = parsed if isinstance(parsed, DictionaryObject) else DictionaryObject()
    fonts = resources.get("/Font")
    fonts = fonts if isinstance(fonts, DictionaryObject) else DictionaryObject()
    fonts[NameObject("/MtrSerial")] = read_object(BytesIO(_SERIAL_FONT), None)  # type: ignore[arg-type]
    resources[NameObject("/Font")] = fonts
    if image is not None:
        images = resources.get("/XObject")
        images = images if isinstance(images, DictionaryObject) else DictionaryObject()
        images[NameObject(IMAGE_NAME.decode())] = image
        resources[NameObject("/XObject")] = images
    out = BytesIO()
    resources.write_to_stream(out)
    return out.getvalue()
