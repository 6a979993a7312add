"""Keeping seals apart: a new e-meterai never covers one already on the page.

Two seals on one spot overprint each other, and the opaque card of the new
one hides the old one's QR code.  The page's existing seals are the
signature widgets the platform names ``e-meterai <serial>``; a request whose
rectangle overlaps one is refused with a free rectangle of the same size
(the nearest one), or moved there when the caller allows it.
"""

from __future__ import annotations

from pypdf.generic import ArrayObject, DictionaryObject

from .errors import SealOverlaps
from .geometry import PageGeometry
from .model import Rect
from .source import LocatedPage, SourceDocument

__all__ = ["displayed_rect", "existing_seals", "free_rect_near", "settle"]

_FIELD_PREFIX = "e-meterai "
_GRID = 6.0
"""Step in points of the search for free space."""


def existing_seals(doc: SourceDocument, page: LocatedPage) -> list[Rect]:
    """Displayed rectangles of the e-meterai seals already on *page*."""
    annots = doc.resolve(page.dictionary.get("/Annots"))
    found: list[Rect] = []
    for item in annots if isinstance(annots, ArrayObject) else []:
        annot = doc.resolve(item)
        if not isinstance(annot, DictionaryObject) or annot.get("/Subtype") != "/Widget":
            continue
        name = doc.resolve(annot.get("/T"))
        box = doc.resolve(annot.get("/Rect"))
        if not (isinstance(name, str) and name.startswith(_FIELD_PREFIX)):
            continue
        if not isinstance(box, ArrayObject) or len(box) != 4:
            continue
        numbers = [doc.resolve(v) for v in box]
        if all(isinstance(v, (int, float)) for v in numbers):
            x0, y0, x1, y1 = (float(v) for v in numbers)  # type: ignore[arg-type]
            found.append(
                displayed_rect(page.geometry, (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
            )
    return found


def displayed_rect(geometry: PageGeometry, box: tuple[float, float, float, float]) -> Rect:
    """The inverse of :func:`~meterai_stamping.engine.geometry.place`: a widget ``/Rect``
    in user space as the rectangle a user sees."""
    cx0, cy0, cx1, cy1 = geometry.crop
    bx0, by0, bx1, by1 = box
    r = geometry.rotate
    if r == 0:
        u0, v0, u1, v1 = bx0 - cx0, by0 - cy0, bx1 - cx0, by1 - cy0
    elif r == 90:
        u0, v0, u1, v1 = by0 - cy0, cx1 - bx1, by1 - cy0, cx1 - bx0
    elif r == 180:
        u0, v0, u1, v1 = cx1 - bx1, cy1 - by1, cx1 - bx0, cy1 - by0
    else:
        u0, v0, u1, v1 = cy1 - by1, bx0 - cx0, cy1 - by0, bx1 - cx0
    k = geometry.user_unit
    return Rect(u0 * k, v0 * k, u1 * k, v1 * k)


def _overlaps(a: Rect, b: Rect) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5


def free_rect_near(geometry: PageGeometry, rect: Rect, taken: list[Rect]) -> Rect | None:
    """The free rectangle of *rect*'s size nearest to it, on a 6 pt grid, or None."""
    size = geometry.displayed_size
    w, h = rect.width, rect.height
    best: tuple[float, Rect] | None = None
    steps_x = int((size.width - w) // _GRID) + 1
    steps_y = int((size.height - h) // _GRID) + 1
    for i in range(max(steps_x, 0)):
        for j in range(max(steps_y, 0)):
            candidate = Rect(i * _GRID, j * _GRID, i * _GRID + w, j * _GRID + h)
            if any(_overlaps(candidate, other) for other in taken):
                continue
            distance = (candidate.x0 - rect.x0) ** 2 + (candidate.y0 - rect.y0) ** 2
            if best is None or distance < best[0]:
                best = (distance, candidate)
    return None if best is None else best[1]


def settle(doc: SourceDocument, page: LocatedPage, number: int, rect: Rect, *, move: bool) -> Rect:
    """*rect* if no seal on the page overlaps it, else the nearest free one (when *move*).

    :raises SealOverlaps: naming the seal in the way and the free space, if any.
    """
    taken = existing_seals(doc, page)
    blocking = [other for other in taken if _overlaps(rect, other)]
    if not blocking:
        return rect
    free = free_rect_near(page.geometry, rect, taken)
    if move and free is not None:
        return free
    other = blocking[0]
    where = f"({other.x0:.0f}, {other.y0:.0f})-({other.x1:.0f}, {other.y1:.0f})"
    if free is None:
        advice = (
            f"No free area of {rect.width:.0f} x {rect.height:.0f} pt is left on page "
            f"{number}; choose another page or a smaller rectangle."
        )
    else:
        advice = (
            f"A free area of the same size: ({free.x0:.0f}, {free.y0:.0f})-"
            f"({free.x1:.0f}, {free.y1:.0f}); place the seal there, or allow moving it."
        )
    raise SealOverlaps(
        f"Page {number} already carries an e-meterai at {where}; the new seal would "
        f"cover it. {advice}"
    )
