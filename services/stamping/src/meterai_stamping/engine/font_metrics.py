"""Advance widths of the two standard fonts the seal uses.

Helvetica and Helvetica-Bold are among the 14 fonts every PDF reader must
provide, so the seal embeds no font program and stays a few kilobytes.  To fit
text into the seal the engine still needs the glyph widths; they are copied here
from Adobe's Core14 AFM files (printable ASCII, in 1/1000 em) so that layout
does not depend on a private module of the PDF library.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["FontName", "text_width"]

FontName = Literal["Helvetica", "Helvetica-Bold"]

_FIRST_CHAR = 32
_HELVETICA = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722,
    722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722,
    667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556,
    556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500,
    500, 334, 260, 334, 584,
)  # fmt: skip
_HELVETICA_BOLD = (
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722,
    722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722,
    667, 944, 667, 667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611,
    611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556,
    500, 389, 280, 389, 584,
)  # fmt: skip
_WIDTHS: dict[FontName, tuple[int, ...]] = {
    "Helvetica": _HELVETICA,
    "Helvetica-Bold": _HELVETICA_BOLD,
}


def text_width(text: str, font: FontName, size: float) -> float:
    """Width in points of *text* set in *font* at *size*.

    Characters outside printable ASCII are measured as the widest glyph, so a
    surprising character can only make the text smaller, never overflow.
    """
    widths = _WIDTHS[font]
    total = 0
    for ch in text:
        index = ord(ch) - _FIRST_CHAR
        total += widths[index] if 0 <= index < len(widths) else 1015
    return total * size / 1000
