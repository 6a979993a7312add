"""``check_stamped``: a cheap proof that a signed output is what the platform can verify.

Run on the finished file right before a job commits, it re-reads the file the
way the engine (and any viewer) will on the next seal, and checks the new
revision and the signature's byte range:

* the cross-reference chain is sound from the last ``startxref`` back to the
  first section (every classic row matches its object header, every
  ``/Prev`` and ``/XRefStm`` lands on a section) and pypdf reads it strictly;
* every object the new revision lists is where its row says, and parses;
* the ``/ByteRange`` is ``[0 a b c]`` with ``b + c`` the file's length, and
  exactly the ``<hex>`` of ``/Contents`` left out; the hex is a DER sequence;
* the revision holds the signature dictionary, a signature widget whose
  ``/V`` is that dictionary and whose ``/AP /N`` is a stream, an ``/Annots``
  array and an AcroForm ``/Fields`` array listing the widget, ``/SigFlags 3``,
  and a trailer ``/Size`` above every object number it uses.

Cost: the chain check is linear in the number of cross-reference rows,
pypdf's strict open reads those rows once, and the new revision has a
handful of objects; nothing hashes or decompresses the document.  Strings
and stream data of the new revision are never needed, so encrypted outputs
are checked without their password.
"""

from __future__ import annotations

import binascii
import re

from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    PdfObject,
    StreamObject,
    read_object,
)

from .errors import StampError, UnverifiableStamp
from .signature import placeholder_of
from .source import SharedBytesIO, assess_cross_references

__all__ = ["check_stamped"]

_HEX = re.compile(rb"[0-9A-Fa-f]*")
_SIG_HEADER = re.compile(rb"\d+ \d+ obj\s*<<\s*/Type\s*/Sig\b")


def check_stamped(stamped: bytes) -> None:
    """Refuse a signed output the platform could not verify or stamp again.

    :raises UnverifiableStamp: saying what is wrong; the job must fail and refund.
    """
    try:
        _check(bytes(stamped))
    except UnverifiableStamp:
        raise
    except (StampError, Exception) as error:  # any parser failure is a failed check
        raise _unverifiable(f"the file cannot be read back ({type(error).__name__})") from error


def _check(data: bytes) -> None:
    start, end = placeholder_of(data)
    _check_byte_range(data, start, end)
    # The update begins with the signature dictionary (see stamp.py): its header
    # is where the new revision starts, whether or not the original ended in %%EOF.
    sig_at = data.rfind(b"<< /Type /Sig ", 0, start)
    update_at = data.rfind(b"\n", 0, data.rfind(b" obj", 0, sig_at)) + 1 if sig_at > 0 else 0
    if update_at <= 0:
        raise _unverifiable("the signature is not in an incremental update")
    _, _, sound, _ = assess_cross_references(data)
    if not sound:
        raise _unverifiable("its cross-reference chain is not sound")
    reader = _StructureReader(SharedBytesIO(data), strict=True)
    ours = _revision_objects(reader, data, update_at)
    sig_number = max(
        (n for n, (off, _) in ours.items() if off < start), default=-1, key=lambda n: ours[n][0]
    )
    if sig_number < 0:
        raise _unverifiable("the signature dictionary is not listed in the new revision")
    # The signature dictionary's /Contents is too long for pypdf's byte-at-a-time hex
    # reader (it would cost more than the rest of the check); its header says enough.
    if _SIG_HEADER.match(data, ours[sig_number][0]) is None:
        raise _unverifiable("the object holding /Contents is not a signature dictionary")
    bodies = {
        n: _raw_object(reader, data, n, off) for n, (off, _) in ours.items() if n != sig_number
    }
    widget_number = _widget_of(bodies, sig_number)
    widget = bodies[widget_number]
    assert isinstance(widget, DictionaryObject)  # _widget_of only returns dictionaries
    _check_appearance(widget, bodies)
    if not any(_lists(body, "/Annots", widget_number) for body in bodies.values()):
        raise _unverifiable("no page's /Annots in the new revision lists the seal")
    if not any(_lists_field(body, widget_number) for body in bodies.values()):
        raise _unverifiable("the AcroForm's /Fields in the new revision does not list the seal")
    size = reader.trailer.get("/Size")
    if not isinstance(size, int) or size <= max(ours):
        raise _unverifiable("its trailer /Size does not cover the new objects")


class _StructureReader(PdfReader):
    """A strict pypdf reader that never derives an encryption key.

    The check reads references, names and numbers only, which are never
    encrypted; pypdf's reader would otherwise try the empty password on every
    encrypted file, for AES-256 the costliest step of the whole check.
    """

    def _handle_encryption(self, password: str | bytes | None) -> None:
        return None


def _check_byte_range(data: bytes, start: int, end: int) -> None:
    if not (0 < start <= end < len(data)) or data[start - 1 : start] != b"<":
        raise _unverifiable("its /ByteRange does not delimit /Contents")
    if data[end : end + 1] != b">" or (end - start) % 2:
        raise _unverifiable("its /ByteRange does not delimit /Contents")
    at = data.rfind(b"/ByteRange [0 ", 0, start)
    found = re.match(rb"/ByteRange \[0 (\d+) (\d+) (\d+)\]", data[at : at + 64])
    if found is None:
        raise _unverifiable("its /ByteRange cannot be read")
    first, second, length = (int(v) for v in found.groups())
    if (first, second) != (start - 1, end + 1) or second + length != len(data):
        raise _unverifiable("its /ByteRange does not cover the whole file but /Contents")
    if _HEX.fullmatch(data, start, end) is None:
        raise _unverifiable("its /Contents is not hexadecimal")
    head = binascii.unhexlify(data[start : min(end, start + 8)])
    if not head.startswith(b"\x30"):
        raise _unverifiable("its /Contents holds no DER-encoded CMS")


def _revision_objects(reader: PdfReader, data: bytes, update_at: int) -> dict[int, tuple[int, int]]:
    """``{number: (offset, generation)}`` of the objects listed at or after *update_at*."""
    ours: dict[int, tuple[int, int]] = {}
    for generation, entries in reader.xref.items():
        for number, offset in entries.items():
            if offset >= update_at:
                if not data.startswith(b"%d %d obj" % (number, generation), offset):
                    raise _unverifiable(f"object {number} is not where its row says")
                ours[number] = (offset, generation)
    if not ours:
        raise _unverifiable("the new revision lists no objects")
    return ours


def _raw_object(reader: PdfReader, data: bytes, number: int, offset: int) -> PdfObject:
    """The object at *offset* as written, without decryption (names, numbers and
    references are never encrypted, and those are all this check reads)."""
    stream = reader.stream
    stream.seek(offset)
    reader.read_object_header(stream)
    return read_object(stream, reader)


def _widget_of(bodies: dict[int, PdfObject], sig_number: int) -> int:
    for number, body in bodies.items():
        if (
            isinstance(body, DictionaryObject)
            and body.get("/Subtype") == "/Widget"
            and body.get("/FT") == "/Sig"
            and isinstance(body.raw_get("/V") if "/V" in body else None, IndirectObject)
            and body.raw_get("/V").idnum == sig_number
        ):
            return number
    raise _unverifiable("no signature widget in the new revision points to the signature")


def _check_appearance(widget: DictionaryObject, bodies: dict[int, PdfObject]) -> None:
    ap = widget.get("/AP")
    normal = ap.raw_get("/N") if isinstance(ap, DictionaryObject) and "/N" in ap else None
    if not isinstance(normal, IndirectObject) or not isinstance(
        bodies.get(normal.idnum), StreamObject
    ):
        raise _unverifiable("the seal's appearance is not a stream of the new revision")
    rect = widget.get("/Rect")
    if not isinstance(rect, ArrayObject) or len(rect) != 4:
        raise _unverifiable("the seal's widget has no /Rect")


def _refs(value: PdfObject | None) -> set[int]:
    if not isinstance(value, ArrayObject):
        return set()
    return {item.idnum for item in value if isinstance(item, IndirectObject)}


def _lists(body: PdfObject, key: str, number: int) -> bool:
    if isinstance(body, ArrayObject):
        return number in _refs(body)
    return isinstance(body, DictionaryObject) and number in _refs(body.get(key))


def _lists_field(body: PdfObject, number: int) -> bool:
    if not isinstance(body, DictionaryObject):
        return isinstance(body, ArrayObject) and number in _refs(body)
    form = body.get("/AcroForm") if NameObject("/AcroForm") in body else body
    if not isinstance(form, DictionaryObject):
        return False
    flags = form.get("/SigFlags")
    return number in _refs(form.get("/Fields")) and isinstance(flags, int) and flags & 3 == 3


def _unverifiable(what: str) -> UnverifiableStamp:
    return UnverifiableStamp(
        f"The stamped document failed the platform's own check: {what}. "
        "Nothing was charged; report the document to support."
    )
