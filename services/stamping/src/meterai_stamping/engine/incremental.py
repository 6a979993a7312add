"""Appending an incremental-update section to an existing PDF.

An incremental update leaves every original byte in place and appends new
object revisions, a cross-reference section for them, and a trailer pointing
back (``/Prev``) to the previous section.  That is what keeps earlier
signatures valid.  The section is written in the form the file already uses:
a cross-reference stream after a stream, a classic table otherwise, and a
hybrid section (a classic table whose trailer points with ``/XRefStm`` to a
stream repeating its entries) after a hybrid-reference file.  The last one
matters to pyHanko, the platform's verifier: it reads a hybrid file's
objects that the classic table marks free only from the stream of that
section or of the very next one, so an update that revises such an object
(the page, the catalog) with a plain table is refused as a reuse of a freed
object, and each later seal fails the same way.

Only the appended section is built here; the original bytes are never
copied, so the cost does not grow with the document.  The caller joins the
two once, into the output.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NewObject", "UpdateTrailer", "build_update"]


@dataclass(frozen=True)
class NewObject:
    """An object revision to append: a new number, or a new version of an existing one."""

    number: int
    generation: int
    body: bytes
    """Serialized object body, without ``N G obj`` / ``endobj``."""


@dataclass(frozen=True)
class UpdateTrailer:
    """Trailer entries of the update section."""

    size: int
    """One more than the highest object number in the file after the update."""
    root: bytes
    """Serialized ``/Root`` reference."""
    info: bytes | None
    """Serialized ``/Info`` reference, carried over from the previous trailer."""
    ids: bytes | None
    """Serialized ``/ID`` array, carried over so the document keeps its identity."""
    prev: int | None
    """Offset of the previous cross-reference section; None for a complete table."""
    encrypt: bytes | None = None
    """Serialized ``/Encrypt`` entry of an encrypted document, carried over unchanged."""


def build_update(
    original: bytes,
    objects: list[NewObject],
    trailer: UpdateTrailer,
    *,
    as_stream: bool,
    existing: dict[int, tuple[int, int]] | None = None,
    hybrid: bool = False,
) -> tuple[bytearray, dict[int, int]]:
    """Return the section to append to *original* and the file offset of each new object's body.

    Offsets count from the start of the file, i.e. ``len(original)`` plus the
    position in the section.

    :param existing: ``{number: (offset, generation)}`` of every original
        object, given when the original cross-reference data is damaged: the
        section then lists all objects and has no ``/Prev``.
    :param hybrid: write a hybrid section (classic table plus ``/XRefStm``);
        the caller reserves object number ``trailer.size - 1`` for the stream.
    """
    base = len(original)
    out = bytearray()
    if not original.endswith((b"\n", b"\r")):
        out += b"\n"
    entries: dict[int, tuple[int, int]] = dict(existing or {})
    body_offsets: dict[int, int] = {}
    for obj in objects:
        entries[obj.number] = (base + len(out), obj.generation)
        out += b"%d %d obj\n" % (obj.number, obj.generation)
        body_offsets[obj.number] = base + len(out)
        out += obj.body
        out += b"\nendobj\n"
    if as_stream:
        _append_xref_stream(out, base, entries, trailer, complete=existing is not None)
    elif hybrid and existing is None:
        stream_at = base + len(out)
        _append_xref_stream(out, base, entries, trailer, complete=False, hidden=True)
        entries[trailer.size - 1] = (stream_at, 0)
        _append_xref_table(out, base, entries, trailer, complete=False, xref_stm=stream_at)
    else:
        _append_xref_table(out, base, entries, trailer, complete=existing is not None)
    return out, body_offsets


def _trailer_entries(trailer: UpdateTrailer, size: int) -> bytes:
    parts = [b"/Size %d /Root " % size, trailer.root]
    if trailer.info is not None:
        parts += [b" /Info ", trailer.info]
    if trailer.ids is not None:
        parts += [b" /ID ", trailer.ids]
    if trailer.encrypt is not None:
        parts += [b" /Encrypt ", trailer.encrypt]
    if trailer.prev is not None:
        parts.append(b" /Prev %d" % trailer.prev)
    return b"".join(parts)


def _subsections(numbers: list[int]) -> list[tuple[int, int]]:
    """Group sorted object numbers into ``(first, count)`` runs."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][0] + runs[-1][1] == n:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((n, 1))
    return runs


def _append_xref_table(
    out: bytearray,
    base: int,
    entries: dict[int, tuple[int, int]],
    trailer: UpdateTrailer,
    *,
    complete: bool,
    xref_stm: int | None = None,
) -> None:
    start = base + len(out)
    lines = [b"xref\n"]
    if complete:
        numbers = list(range(trailer.size))
        for n in numbers:
            if n in entries:
                lines.append(b"%010d %05d n\r\n" % entries[n])
            else:
                lines.append(b"0000000000 65535 f\r\n" if n == 0 else b"0000000000 00001 f\r\n")
        lines.insert(1, b"0 %d\n" % trailer.size)
    else:
        # A first row for object 0, as Acrobat writes: readers such as pypdf otherwise take a
        # table starting elsewhere for one numbered off by its first number, and warn.
        lines.append(b"0 1\n0000000000 65535 f\r\n")
        numbers = sorted(entries)
        for first, count in _subsections(numbers):
            lines.append(b"%d %d\n" % (first, count))
            lines.extend(b"%010d %05d n\r\n" % entries[n] for n in range(first, first + count))
    out += b"".join(lines)
    hybrid = b"" if xref_stm is None else b" /XRefStm %d" % xref_stm
    out += b"trailer\n<< " + _trailer_entries(trailer, trailer.size) + hybrid + b" >>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % start


def _append_xref_stream(
    out: bytearray,
    base: int,
    entries: dict[int, tuple[int, int]],
    trailer: UpdateTrailer,
    *,
    complete: bool,
    hidden: bool = False,
) -> None:
    """Append a cross-reference stream; *hidden* for the ``/XRefStm`` of a hybrid
    section, which is found through the table's trailer and so carries no
    trailer entries or ``startxref`` of its own."""
    start = base + len(out)
    own = trailer.size - 1
    entries = {**entries, own: (start, 0)}
    width = max(4, (start + 4096).bit_length() // 8 + 1)
    rows = bytearray()
    if complete:
        numbers = list(range(trailer.size))
        index = [(0, trailer.size)]
    else:
        numbers = sorted(entries)
        index = _subsections(numbers)
    for n in numbers:
        if n in entries:
            offset, generation = entries[n]
            rows += b"\x01" + offset.to_bytes(width, "big") + generation.to_bytes(2, "big")
        else:
            rows += b"\x00" + bytes(width) + (b"\xff\xff" if n == 0 else b"\x00\x01")
    index_text = b" ".join(b"%d %d" % run for run in index)
    out += b"%d 0 obj\n<< /Type /XRef /W [1 %d 2] /Index [%s] " % (own, width, index_text)
    out += b"/Size %d" % trailer.size if hidden else _trailer_entries(trailer, trailer.size)
    out += b" /Length %d >>\nstream\n" % len(rows)
    out += rows
    out += b"\nendstream\nendobj\n"
    if not hidden:
        out += b"startxref\n%d\n%%%%EOF\n" % start
