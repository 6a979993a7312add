"""Value types of the stamp engine's public API.

All of them are frozen dataclasses without behaviour beyond validation of
their own fields, so they can cross process boundaries (gRPC, Celery) as plain
values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

__all__ = [
    "MM_PER_PT",
    "DocumentInfo",
    "Limits",
    "PageSize",
    "PreparedDocument",
    "Rect",
    "Seal",
]

MM_PER_PT = 25.4 / 72
"""Millimetres in one PDF point (1/72 inch)."""

_MIN_MODULE_MM = 0.35
"""Smallest QR module phone cameras decode reliably at normal reading distance."""

_SEAL_QR_MODULES = 33 + 2 * 4
"""A version-4 QR (33 modules, up to 62 URL bytes at error correction M) plus
its 4-module quiet zone on each side: the size of every verify URL the platform
issues (``https://<host>/v/`` + 22-character serial)."""


@dataclass(frozen=True)
class Rect:
    """A rectangle on the page *as displayed*.

    Coordinates are PDF points (1/72 inch, already multiplied by the page's
    ``/UserUnit``), with the origin at the bottom-left corner of the visible
    page: after ``/Rotate`` is applied and relative to the CropBox.  This is
    the frame a user picks a position in, whatever the file's internals.
    """

    x0: float
    """Left edge."""
    y0: float
    """Bottom edge."""
    x1: float
    """Right edge; greater than :attr:`x0`."""
    y1: float
    """Top edge; greater than :attr:`y0`."""

    @property
    def width(self) -> float:
        """Horizontal extent in points."""
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        """Vertical extent in points."""
        return self.y1 - self.y0

    def is_well_formed(self) -> bool:
        """True when all coordinates are finite and the rectangle has an area."""
        coords = (self.x0, self.y0, self.x1, self.y1)
        return all(math.isfinite(c) for c in coords) and self.x1 > self.x0 and self.y1 > self.y0


@dataclass(frozen=True)
class Seal:
    """What the visible seal shows."""

    serial: str
    """The 22-character e-meterai serial number, printed under the QR code."""
    verify_url: str
    """The full URL encoded in the QR code, e.g. ``https://verify.example/v/<serial>``."""


@dataclass(frozen=True)
class Limits:
    """Bounds that keep one request's cost predictable.

    The defaults suit interactive use; batch callers may pass their own.
    """

    max_bytes: int = 20 * 1024 * 1024
    """Largest accepted input file."""
    max_pages: int = 2000
    """Largest accepted page count (as declared by the page tree)."""
    min_seal_side_pt: float = round(_SEAL_QR_MODULES * _MIN_MODULE_MM / MM_PER_PT, 1)
    """Smallest accepted side of the seal rectangle, about 40.7 pt (14.4 mm).

    The QR code takes the full short side of the seal rectangle.  A verify URL
    needs a version-4 symbol (33 modules) plus a 4-module quiet zone each side,
    41 modules in all; phones decode printed modules reliably down to about
    0.35 mm, so the square must be at least 41 x 0.35 mm.  The engine also
    checks the actual module size after layout, which matters for unusually
    long URLs or nearly square rectangles where text shares the short side.
    """


@dataclass(frozen=True)
class PageSize:
    """Size of one page as displayed, in points (``/UserUnit`` and ``/Rotate`` applied)."""

    width: float
    height: float


@dataclass(frozen=True)
class DocumentInfo:
    """What :func:`~meterai_stamping.engine.inspect` learns without touching page content."""

    page_count: int
    """Number of pages."""
    page_sizes: tuple[PageSize, ...]
    """Displayed size of each page, first page first."""


@dataclass(frozen=True)
class PreparedDocument:
    """A stamped document waiting for its CMS signature.

    Only :attr:`digest` needs to travel to the signer; the rest stays with the
    stamping service until :func:`~meterai_stamping.engine.embed_signature`.

    The file is kept as the untouched original plus the appended update:
    :attr:`data` joins them on first use (one copy of the file), and
    :func:`~meterai_stamping.engine.embed_signature` given the document itself
    writes the signed file from the two parts without that copy.
    """

    original: bytes
    """The input document, an exact prefix of the output."""
    update: bytes
    """The appended incremental update; ``/Contents`` holds a placeholder of ``0`` hex digits."""
    contents_start: int
    """Offset of the first hex digit inside ``<...>`` of ``/Contents``."""
    contents_end: int
    """Offset just after the last hex digit of ``/Contents``."""
    byte_range: tuple[int, int, int, int]
    """The ``/ByteRange`` written into the signature dictionary."""
    digest: bytes
    """SHA-256 over the two byte ranges: what the CMS must sign."""
    page_count: int
    """Number of pages in the document."""

    @cached_property
    def data(self) -> bytes:
        """The whole output file: :attr:`original` followed by :attr:`update`."""
        return b"".join((self.original, self.update))
