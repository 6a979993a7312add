"""Structural bounds a document must keep before the engine spends work (or quota) on it.

Each bound is far beyond what any producer writes and well inside what every
validator reads, so a file outside them is hostile or broken, and refusing
it up front (``INVALID_ARGUMENT``) is better than stamping a result that the
platform's verifier, a viewer or the next seal cannot read:

* a trailer ``/Size`` larger than the file's length: every object needs more
  than one byte, so the count is a lie (10**9 makes readers allocate tables
  for a billion entries);
* objects nested deeper than :data:`MAX_NESTING` in what the seal revises
  (page, ``/Annots``, AcroForm, catalog): the revision copies them, and
  recursive readers such as pyHanko fail on deep copies;
* loops in the ``/Prev`` chain and in the page tree are refused where they
  are walked (:mod:`~meterai_stamping.engine.source`).

All checks are bounded: the depth walk stops at the bound, whatever the size.
"""

from __future__ import annotations

from pypdf.generic import ArrayObject, DictionaryObject, PdfObject

from .errors import MalformedPdf

__all__ = ["MAX_NESTING", "check_declared_size", "check_nesting"]

MAX_NESTING = 64
"""Deepest nesting of arrays and dictionaries accepted in a revised object."""


def check_declared_size(size: object, file_length: int) -> None:
    """Refuse a trailer ``/Size`` no file of *file_length* bytes can hold."""
    if isinstance(size, int) and not isinstance(size, bool) and size > max(file_length, 1024):
        raise MalformedPdf(
            f"The PDF's trailer declares {size:,} objects, more than a file of "
            f"{file_length:,} bytes can hold, so its cross-reference data is corrupt; "
            "re-save it with a PDF editor and try again."
        )


def check_nesting(value: PdfObject | None, what: str) -> None:
    """Refuse *value* if arrays/dictionaries nest deeper than :data:`MAX_NESTING`.

    Iterative, and it stops at the bound: the cost is at most the size of
    the object's first :data:`MAX_NESTING` levels.  Indirect references are
    not followed (each revised object is checked on its own).
    """
    stack: list[tuple[PdfObject, int]] = [(value, 0)] if value is not None else []
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            raise MalformedPdf(
                f"The PDF's {what} nests arrays or dictionaries more than {MAX_NESTING} levels "
                "deep, which no document needs; re-save it with a PDF editor and try again."
            )
        if isinstance(item, DictionaryObject):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, ArrayObject):
            stack.extend((child, depth + 1) for child in item)
