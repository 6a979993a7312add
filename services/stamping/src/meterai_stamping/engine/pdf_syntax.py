"""Serialising PDF values: the few object syntaxes the update writes itself.

New objects are written as bytes directly (faster than building pypdf object
graphs); existing dictionaries that get a new revision are written with
pypdf's own serialiser so their content is reproduced faithfully.
"""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO

from pypdf.generic import PdfObject

__all__ = ["pdf_date", "pdf_number", "pdf_text", "serialize", "stream_object", "text_bytes"]


def serialize(value: PdfObject) -> bytes:
    """The PDF syntax of a pypdf object (indirect references stay references)."""
    buffer = BytesIO()
    value.write_to_stream(buffer)
    return buffer.getvalue()


def pdf_number(value: float) -> bytes:
    """A PDF real without exponent, at most 4 decimals."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return (text if text not in ("-0", "") else "0").encode()


def pdf_text(text: str) -> bytes:
    """A PDF text string: a literal string for ASCII, UTF-16BE with BOM otherwise.

    Viewers show ``/T`` and ``/Reason`` to people, so non-ASCII names must
    survive; PDFDocEncoding covers ASCII identically, UTF-16BE covers the rest.
    """
    if text.isascii() and text.isprintable():
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return b"(" + escaped.encode("ascii") + b")"
    return b"<" + text_bytes(text).hex().upper().encode() + b">"


def text_bytes(text: str) -> bytes:
    """The bytes :func:`pdf_text` writes for *text*, before string syntax: what gets encrypted."""
    if text.isascii() and text.isprintable():
        return text.encode("ascii")
    return b"\xfe\xff" + text.encode("utf-16-be")


def stream_object(entries: bytes, data: bytes) -> bytes:
    """A stream object's body: ``<< entries /Length n >>`` and *data* as stored."""
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data)


def pdf_date(moment: datetime) -> bytes:
    """A PDF date string ``(D:YYYYMMDDHHmmSS+HH'mm')``; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if minutes == 0:
        zone = "Z"
    else:
        sign = "+" if minutes > 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"
    return f"(D:{moment.strftime('%Y%m%d%H%M%S')}{zone})".encode()
