"""Repairing stream lengths of a damaged original, so strict readers can read what viewers do.

A file whose cross-reference data is damaged gets a complete table in its
update (:mod:`~meterai_stamping.engine.incremental`).  Such files often have
streams whose ``/Length`` is wrong too; viewers and pypdf find ``endstream``
themselves, but pyHanko, the platform's verifier, does not, and then cannot
analyse the changes a later seal makes.  For damaged originals only, each
stream whose direct ``/Length`` does not end at ``endstream`` gets a new
revision with the length that does: same dictionary, same bytes.

Linear in the file's size, and only ever run for files that are already
being repaired; encrypted files are left alone (their stream bytes are
ciphertext the update would have to re-encrypt).
"""

from __future__ import annotations

import re

from .incremental import NewObject

__all__ = ["repaired_stream_lengths"]

_STREAM_HEAD = re.compile(rb"(\d{1,10})[ \t\r\n\f\0]+(\d{1,5})[ \t\r\n\f\0]+obj\b")
_LENGTH = re.compile(rb"/Length[ \t\r\n\f\0]+(\d{1,12})(?![ \t\r\n\f\0]+\d+[ \t\r\n\f\0]+R)")
_MAX_REPAIRS = 256


def repaired_stream_lengths(data: bytes, existing: dict[int, tuple[int, int]]) -> list[NewObject]:
    """New revisions of the streams of *existing* whose ``/Length`` is wrong."""
    out: list[NewObject] = []
    for number, (offset, generation) in existing.items():
        head = _STREAM_HEAD.match(data, offset)
        if head is None:
            continue
        end_obj = data.find(b"endobj", head.end())
        stream_kw = data.find(b"stream", head.end(), end_obj if end_obj > 0 else len(data))
        if stream_kw < 0 or data[stream_kw - 3 : stream_kw] == b"end":
            continue
        dictionary = data[head.end() : stream_kw]
        length = _LENGTH.search(dictionary)
        if length is None:
            continue
        start = stream_kw + 6
        start += 2 if data.startswith(b"\r\n", start) else 1
        declared = int(length.group(1))
        after = data[start + declared : start + declared + 12].lstrip(b"\r\n \t")
        if after.startswith(b"endstream"):
            continue
        end = data.find(b"endstream", start)
        if end < 0:
            continue
        actual = end
        while actual > start and data[actual - 1 : actual] in (b"\n", b"\r"):
            actual -= 1
        fixed = (
            dictionary[: length.start(1)] + b"%d" % (actual - start) + dictionary[length.end(1) :]
        )
        body = fixed.strip() + b"\nstream\n" + data[start:actual] + b"\nendstream"
        out.append(NewObject(number, generation, body))
        if len(out) >= _MAX_REPAIRS:
            break
    return out
