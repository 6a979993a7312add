"""What was changed in a document after one of its signatures: pyHanko's diff, named.

pyHanko's difference analysis (run by the validator over every revision after the signed one)
says how far later revisions went (:class:`~pyhanko.sign.diff_analysis.ModificationLevel`)
and which form fields they touched. This module turns that into the kinds a checker
understands (:class:`Change`), telling a later *signature* apart from a filled-in form value,
which pyHanko both calls ``FORM_FILLING``.

One judgement is ours: a later signature whose visible widget overlaps the seal, or covers
more than :data:`COVERING_SHARE` of its page, hides what the seal covered ("PERJANJIAN INI
DIBATALKAN" written across the page) and is reported as :attr:`Change.ANNOTATIONS` as well as
:attr:`Change.SIGNATURES`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

__all__ = ["COVERING_SHARE", "Change", "changes_after"]

COVERING_SHARE = 0.10
"""A later signature widget covering more of its page than this is covering the document."""

Box = tuple[float, float, float, float]


class Change(enum.Enum):
    """A kind of change made in revisions after a signature."""

    FORM_FILLING = "form_filling"
    """A form field's value changed."""

    ANNOTATIONS = "annotations"
    """Annotations were added or changed (including a later signature widget that covers the
    page or the seal)."""

    SIGNATURES = "signatures"
    """Further signatures were added."""

    CONTENT = "content"
    """Anything else: page content, objects, structure."""

    VALIDATION_DATA = "validation_data"
    """Certificates, revocation data or document timestamps for long-term validation."""


def _box(field: Any) -> Box | None:
    try:
        rect = field.get("/Rect")
        if rect is None:
            return None
        x1, y1, x2, y2 = (float(v) for v in rect)
    except (TypeError, ValueError, KeyError):
        return None
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _overlap(a: Box, b: Box) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _page_box(field: Any) -> Box | None:
    try:
        page = field.get("/P")
        if page is None:
            return None
        page = page.get_object() if isinstance(page, generic.IndirectObject) else page
        return _box({"/Rect": page.get("/MediaBox")})
    except Exception:  # untrusted structure: an unreadable page only loses this criterion
        return None


def _covers(later: EmbeddedPdfSignature, seal: EmbeddedPdfSignature) -> bool:
    """The later signature's widget overlaps the seal or covers much of its page."""
    try:
        widget = later.sig_field
        seal_field = seal.sig_field
    except Exception:  # a field pyHanko cannot resolve has no widget to judge
        return False
    box = _box(widget)
    if box is None or _area(box) == 0:
        return False
    seal_box = _box(seal_field)
    if seal_box is not None and _overlap(box, seal_box) > 0:
        return True
    page = _page_box(widget) or _page_box(seal_field)
    return (
        page is not None and _area(page) > 0 and _overlap(box, page) > COVERING_SHARE * _area(page)
    )


def _names(signatures: Iterable[EmbeddedPdfSignature]) -> set[str]:
    return {str(s.field_name) for s in signatures}


def changes_after(
    seal: EmbeddedPdfSignature,
    level: ModificationLevel | None,
    whole_file: bool,
    everyone: Sequence[EmbeddedPdfSignature],
) -> tuple[Change, ...]:
    """The kinds of change made after ``seal`` (empty: nothing), in a stable order.

    :param level: pyHanko's modification level for ``seal`` (after validation).
    :param whole_file: the seal's byte range covers the whole file (no later revision).
    :param everyone: every signature of the document, to tell later signatures apart.
    """
    if whole_file:
        return ()
    later = [s for s in everyone if s.signed_revision > seal.signed_revision]
    later_names = _names(later)
    found: set[Change] = set()
    diff = seal.diff_result
    if level is None or level is ModificationLevel.OTHER or not isinstance(diff, DiffResult):
        found.add(Change.CONTENT)
    else:
        changed = {str(name) for name in diff.changed_form_fields}
        if changed & later_names:
            found.add(Change.SIGNATURES)
        if changed - later_names:
            found.add(Change.FORM_FILLING)
        if level is ModificationLevel.ANNOTATIONS:
            found.add(Change.ANNOTATIONS)
        if level is ModificationLevel.LTA_UPDATES:
            found.add(Change.VALIDATION_DATA)
    if later:
        found.add(Change.SIGNATURES)
        if any(_covers(other, seal) for other in later):
            found.add(Change.ANNOTATIONS)
    return tuple(change for change in Change if change in found)
