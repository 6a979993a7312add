"""The visible seal: a QR code and the stamp-duty legend, as a PDF content stream.

Everything is vector graphics and text in the standard Helvetica fonts, so the
seal is a few kilobytes, sharp at any zoom and prints cleanly.  It is an
opaque, framed card: whatever lies under the rectangle is covered.  The layout
adapts to the rectangle's shape: text beside the QR code in a wide rectangle,
below it in a tall one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .font_metrics import FontName, text_width
from .qr import QUIET_ZONE, QrSymbol

__all__ = [
    "FONT_RESOURCES",
    "LEGEND",
    "SEAL_COLOUR",
    "SealLayout",
    "layout_seal",
    "seal_content",
]

LEGEND = ("METERAI ELEKTRONIK", "10000", "SEPULUH RIBU RUPIAH")
"""Fixed lines printed above the serial number."""

SEAL_COLOUR = b"0.72 0.08 0.2"
"""RGB of the frame and legend: the crimson of the stamp-duty seal people know."""

FONT_RESOURCES = (
    b"<</Font<<"
    b"/F1<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>"
    b"/F2<</Type/Font/Subtype/Type1/BaseFont/Helvetica-Bold/Encoding/WinAnsiEncoding>>"
    b">>>>"
)
"""Resources of the appearance stream: both fonts inline, no extra objects."""

# (font resource, font, relative size) per line; the serial comes last.
_LINES: tuple[tuple[bytes, FontName, float], ...] = (
    (b"/F2", "Helvetica-Bold", 1.0),
    (b"/F2", "Helvetica-Bold", 2.0),
    (b"/F1", "Helvetica", 1.0),
    (b"/F1", "Helvetica", 1.0),
)
_LEADING = 1.2
_WIDE = 1.5
_TALL = 1.3


@dataclass(frozen=True)
class SealLayout:
    """Where the QR square and the text block go inside a ``width x height`` box."""

    width: float
    height: float
    qr_x: float
    qr_y: float
    qr_side: float
    """Side of the QR square, quiet zone included."""
    text_box: tuple[float, float, float, float]
    """``(x0, y0, x1, y1)`` of the area the legend is fitted into."""
    module: float
    """Side of one QR module in points."""


def layout_seal(width: float, height: float, qr: QrSymbol) -> SealLayout:
    """Split the seal box between the QR code and the legend.

    The QR square takes the full short side of a clearly wide or tall box, so
    the module size (what decides scannability) is as large as the box allows;
    a nearly square box gives the bottom 28 % to the text.
    """
    if width >= _WIDE * height:
        side = height
        qr_x, qr_y = 0.0, 0.0
        pad = 0.06 * height
        text_box = (side + pad * 0.5, pad, width - pad, height - pad)
    elif height >= _TALL * width:
        side = width
        qr_x, qr_y = 0.0, height - side
        pad = 0.06 * width
        text_box = (pad, pad, width - pad, height - side)
    else:
        text_h = 0.28 * height
        side = min(width, height - text_h)
        qr_x, qr_y = (width - side) / 2, height - side
        pad = 0.04 * width
        text_box = (pad, pad * 0.5, width - pad, height - side)
    return SealLayout(
        width=width,
        height=height,
        qr_x=qr_x,
        qr_y=qr_y,
        qr_side=side,
        text_box=text_box,
        module=side / qr.size_with_quiet_zone,
    )


def seal_content(layout: SealLayout, qr: QrSymbol, serial: str) -> bytes:
    """Content stream drawing the seal into ``[0 0 width height]``.

    The seal is an opaque card: white fill over the whole rectangle, so body
    text never shows through the serial or the value, and a frame in
    :data:`SEAL_COLOUR` that people recognise as the e-meterai.  The frame
    lies inside the QR code's quiet zone, one module wide at most, so the
    three modules of white left are what scanners need.  The legend is drawn
    in the seal colour, the serial in black.
    """
    w, h = layout.width, layout.height
    line = min(layout.module * 0.6, 0.03 * min(w, h))
    inner = line * 1.8
    parts: list[bytes] = [
        b"q 1 1 1 rg 0 0 ",
        _num(w),
        b" ",
        _num(h),
        b" re f ",
        SEAL_COLOUR,
        b" RG ",
        _num(line),
        b" w ",
        _rect(line / 2, line / 2, w - line, h - line),
        b" re S ",
        _num(line / 3),
        b" w ",
        _rect(inner, inner, w - 2 * inner, h - 2 * inner),
        b" re S 1 1 1 rg ",
        _rect(layout.qr_x + inner, layout.qr_y + inner, layout.qr_side - 2 * inner,
              layout.qr_side - 2 * inner),
        b" re f 0 0 0 rg q ",
        _num(layout.module),
        b" 0 0 ",
        _num(layout.module),
        b" ",
        _num(layout.qr_x),
        b" ",
        _num(layout.qr_y),
        b" cm\n",
    ]  # fmt: skip
    top = qr.size - 1 + QUIET_ZONE
    parts.extend(
        b"%d %d %d 1 re\n" % (col + QUIET_ZONE, top - row, length) for row, col, length in qr.runs
    )
    parts.append(b"f Q\n")
    parts.append(_legend(layout.text_box, (*LEGEND, serial)))
    parts.append(b"Q")
    return b"".join(parts)


def _legend(box: tuple[float, float, float, float], lines: tuple[str, ...]) -> bytes:
    """Fit the lines into *box*, each centred, as large as both dimensions allow."""
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    if width <= 0 or height <= 0:
        return b""
    total_units = sum(rel for _, _, rel in _LINES) * _LEADING
    unit = height / total_units
    for (_, font, rel), text in zip(_LINES, lines, strict=True):
        natural = text_width(text, font, rel)
        if natural > 0:
            unit = min(unit, width / natural)
    out: list[bytes] = [b"BT ", SEAL_COLOUR, b" rg "]
    used = total_units * unit
    y = y1 - (height - used) / 2
    for (resource, font, rel), text in zip(_LINES, lines, strict=True):
        size = unit * rel
        y -= size * _LEADING
        baseline = y + size * (_LEADING - 1) / 2 + size * 0.2
        x = x0 + (width - text_width(text, font, size)) / 2
        if text is lines[-1]:
            out.append(b"0 0 0 rg ")  # the serial, in black: what people read out
        out.append(
            b"%s %s Tf 1 0 0 1 %s %s Tm (%s) Tj "
            % (resource, _num(size), _num(x), _num(baseline), _escape(text))
        )
    out.append(b"ET\n")
    return b"".join(out)


def _escape(text: str) -> bytes:
    """A PDF literal string body in WinAnsi; unsupported characters become ``?``."""
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _rect(x: float, y: float, w: float, h: float) -> bytes:
    return b"%s %s %s %s" % (_num(x), _num(y), _num(w), _num(h))


def _num(value: float) -> bytes:
    """Compact PDF real: at most 4 decimals, no exponent, no trailing zeros."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return (text if text not in ("-0", "") else "0").encode()
