"""Page boxes and the mapping from the displayed page to PDF user space.

Users place the seal on the page as they *see* it.  A PDF page, however, may
be rotated (``/Rotate``), show only part of its MediaBox (``/CropBox``) and use
a unit other than the point (``/UserUnit``).  This module turns a displayed
rectangle into the annotation ``/Rect`` and the appearance ``/Matrix`` that
make the seal land in that rectangle, upright.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .model import PageSize, Rect

__all__ = ["PageGeometry", "Placement", "place"]

_LETTER = (0.0, 0.0, 612.0, 792.0)


@dataclass(frozen=True)
class PageGeometry:
    """The visible area of a page and how it is turned for display."""

    crop: tuple[float, float, float, float]
    """Visible area (CropBox clipped to MediaBox) in default user space, normalised."""
    rotate: int
    """Clockwise display rotation: 0, 90, 180 or 270."""
    user_unit: float
    """Size of one user-space unit in points."""

    @classmethod
    def from_boxes(
        cls,
        media_box: tuple[float, float, float, float] | None,
        crop_box: tuple[float, float, float, float] | None,
        rotate: int,
        user_unit: float,
    ) -> PageGeometry:
        """Normalise raw page attributes the way viewers do.

        A missing MediaBox defaults to US Letter, a CropBox is clipped to the
        MediaBox (and ignored if that leaves nothing), rotation is taken modulo
        360 with non-multiples of 90 ignored, and a non-positive UserUnit is 1.
        """
        media = _normalise(media_box) if media_box is not None else _LETTER
        if media[2] - media[0] <= 0 or media[3] - media[1] <= 0:
            media = _LETTER
        crop = media
        if crop_box is not None:
            c = _normalise(crop_box)
            clipped = (
                max(c[0], media[0]),
                max(c[1], media[1]),
                min(c[2], media[2]),
                min(c[3], media[3]),
            )
            if clipped[2] > clipped[0] and clipped[3] > clipped[1]:
                crop = clipped
        rotate = rotate % 360 if rotate % 90 == 0 else 0
        if not (math.isfinite(user_unit) and user_unit > 0):
            user_unit = 1.0
        return cls(crop=crop, rotate=rotate, user_unit=user_unit)

    @property
    def displayed_size(self) -> PageSize:
        """Size of the page on screen, in points."""
        w = (self.crop[2] - self.crop[0]) * self.user_unit
        h = (self.crop[3] - self.crop[1]) * self.user_unit
        return PageSize(h, w) if self.rotate in (90, 270) else PageSize(w, h)

    def contains(self, rect: Rect, tolerance: float = 0.01) -> bool:
        """True when *rect* (displayed coordinates) lies inside the displayed page."""
        size = self.displayed_size
        return (
            rect.x0 >= -tolerance
            and rect.y0 >= -tolerance
            and rect.x1 <= size.width + tolerance
            and rect.y1 <= size.height + tolerance
        )


@dataclass(frozen=True)
class Placement:
    """Where an appearance drawn in displayed points goes in user space."""

    annotation_rect: tuple[float, float, float, float]
    """The widget ``/Rect`` in default user space."""
    matrix: tuple[float, float, float, float, float, float]
    """The appearance ``/Matrix``: undoes the page rotation and the UserUnit scale."""


def place(geometry: PageGeometry, rect: Rect) -> Placement:
    """Map a displayed rectangle to a widget rectangle and appearance matrix.

    The appearance stream is drawn upright in a ``width x height`` point box;
    PDF viewers map its transformed bounding box onto ``/Rect``, so the matrix
    only needs the rotation that cancels ``/Rotate`` and the 1/UserUnit scale.
    """
    cx0, cy0, cx1, cy1 = geometry.crop
    k = 1.0 / geometry.user_unit
    u0, v0, u1, v1 = rect.x0 * k, rect.y0 * k, rect.x1 * k, rect.y1 * k
    r = geometry.rotate
    if r == 0:
        box = (cx0 + u0, cy0 + v0, cx0 + u1, cy0 + v1)
        m = (k, 0.0, 0.0, k)
    elif r == 90:
        box = (cx1 - v1, cy0 + u0, cx1 - v0, cy0 + u1)
        m = (0.0, k, -k, 0.0)
    elif r == 180:
        box = (cx1 - u1, cy1 - v1, cx1 - u0, cy1 - v0)
        m = (-k, 0.0, 0.0, -k)
    else:
        box = (cx0 + v0, cy1 - u1, cx0 + v1, cy1 - u0)
        m = (0.0, -k, k, 0.0)
    return Placement(annotation_rect=box, matrix=(*m, 0.0, 0.0))


def _normalise(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
