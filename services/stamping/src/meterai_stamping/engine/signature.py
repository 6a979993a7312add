"""The signature dictionary, its byte range, and embedding the CMS afterwards.

PAdES signs the whole file except the hex string of ``/Contents``.  The
dictionary is written with fixed-width placeholders, so once the file layout
is final the ``/ByteRange`` can be patched in place and the digest computed
without moving a byte; the CMS then drops into the zero-filled hole.

The dictionary always lies in the appended update, so everything here works
on that update plus the untouched original: hashing and patching never need
the two joined, and each whole-file copy that remains is the output itself.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Callable
from datetime import datetime

from .errors import InvalidPlaceholder, SignatureTooLarge
from .model import PreparedDocument
from .pdf_syntax import pdf_date, pdf_text

__all__ = [
    "SignedRegion",
    "embed_signature",
    "fill_byte_range",
    "placeholder_of",
    "signature_dictionary",
    "update_digest",
]

_BYTE_RANGE_KEY = b"/ByteRange "
_BYTE_RANGE_WIDTH = 48
"""Room for ``[0 a b c]`` with three offsets of up to 15 digits each."""
_CONTENTS_KEY = b"/Contents <"

SignedRegion = tuple[int, int, tuple[int, int, int, int]]
"""``(contents_start, contents_end, byte_range)``."""


def signature_dictionary(
    signature_size: int,
    signing_time: datetime,
    reason: str,
    encrypt_string: Callable[[bytes], bytes] = lambda literal: literal,
) -> bytes:
    """Body of the ``/Type /Sig`` dictionary with placeholders for range and CMS.

    ``/ETSI.CAdES.detached`` makes it a PAdES baseline signature; the
    ``/Adobe.PPKLite`` filter is what every validator expects alongside it.
    *encrypt_string* turns ``/M`` and ``/Reason`` into the document's
    ciphertext when it is encrypted; ``/Contents`` always stays in clear.
    """
    return b"".join(
        (
            b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached ",
            _BYTE_RANGE_KEY,
            b"[" + b" " * (_BYTE_RANGE_WIDTH - 2) + b"]",
            b" ",
            _CONTENTS_KEY,
            b"0" * (2 * signature_size),
            b"> /M ",
            encrypt_string(pdf_date(signing_time)),
            b" /Reason ",
            encrypt_string(pdf_text(reason)),
            b" >>",
        )
    )


def fill_byte_range(
    update: bytearray, base: int, body_offset: int, signature_size: int
) -> SignedRegion:
    """Write the final ``/ByteRange`` into the signature dictionary at *body_offset*.

    :param update: the appended section, which holds the dictionary; it is
        patched in place.
    :param base: file offset where *update* starts (the original's length).
    :param body_offset: file offset of the dictionary.

    The range covers everything but ``<...>`` of ``/Contents``, delimiters
    included, as ISO 32000 requires.  Returned offsets count from the start
    of the file.
    """
    at = body_offset - base
    range_at = update.index(_BYTE_RANGE_KEY, at) + len(_BYTE_RANGE_KEY)
    contents_start = base + update.index(_CONTENTS_KEY, at) + len(_CONTENTS_KEY)
    contents_end = contents_start + 2 * signature_size
    after = contents_end + 1
    byte_range = (0, contents_start - 1, after, base + len(update) - after)
    text = b"[%d %d %d %d]" % byte_range
    update[range_at : range_at + _BYTE_RANGE_WIDTH] = text.ljust(_BYTE_RANGE_WIDTH)
    return contents_start, contents_end, byte_range


_FILLED_BYTE_RANGE = re.compile(rb"/ByteRange \[0 (\d{1,15}) (\d{1,15}) (\d{1,15})\]")


def placeholder_of(prepared: bytes) -> tuple[int, int]:
    """``(contents_start, contents_end)`` of the placeholder :func:`fill_byte_range` filled
    in a prepared file, read back from its ``/ByteRange``.

    The prepared file ends with our incremental update, so its last ``/ByteRange`` is ours; a
    finishing process needs nothing but the file to embed the signature.
    :func:`embed_signature` still checks that the offsets delimit a placeholder.

    :raises InvalidPlaceholder: the file holds no filled ``/ByteRange``.
    """
    at = prepared.rfind(_BYTE_RANGE_KEY + b"[0 ")
    found = _FILLED_BYTE_RANGE.match(prepared, at) if at >= 0 else None
    if found is None:
        raise InvalidPlaceholder("the document holds no signature placeholder to fill")
    before_contents, after_contents = int(found[1]), int(found[2])
    return before_contents + 1, after_contents - 1


def update_digest(
    original: bytes, update: bytes | bytearray, byte_range: tuple[int, int, int, int]
) -> bytes:
    """SHA-256 over the two signed ranges of ``original + update``, without joining them.

    Hashing the original is the only work proportional to file size.  The
    first range must start at 0 and cover the whole original, as it does when
    the signature dictionary is in *update*.
    """
    base = len(original)
    start, first, second, length = byte_range
    if start != 0 or first < base:
        raise ValueError("the first signed range must cover the whole original")
    view = memoryview(update)
    digest = hashlib.sha256(original)
    digest.update(view[: first - base])
    digest.update(view[second - base : second - base + length])
    return digest.digest()


def embed_signature(
    prepared: bytes | PreparedDocument, contents_start: int, contents_end: int, cms_der: bytes
) -> bytes:
    """Put the DER-encoded CMS into the ``/Contents`` placeholder of a prepared file.

    The rest of the file is untouched, so the digest the CMS signs stays valid.
    The CMS is written as upper-case hex followed by the zero padding the
    placeholder reserved (trailing zeros are ignored by DER parsers).  The
    result is assembled from views of *prepared* in one join: one copy of the
    file.  Given the :class:`PreparedDocument` itself (in process, right after
    :func:`~meterai_stamping.engine.prepare`), the original and the update are
    joined around the CMS directly, so the whole prepared file is never built.

    :raises SignatureTooLarge: the CMS needs more room than was reserved.
    :raises InvalidPlaceholder: the offsets do not delimit a placeholder.
    """
    head: bytes = b""
    if isinstance(prepared, PreparedDocument):
        head = prepared.original
        if contents_start <= len(head):
            raise InvalidPlaceholder(
                "contents_start/contents_end do not delimit the /Contents placeholder of this "
                "document; pass the values returned by prepare together with its data."
            )
        prepared = prepared.update
        contents_start -= len(head)
        contents_end -= len(head)
    if not (
        0 < contents_start <= contents_end < len(prepared)
        and prepared[contents_start - 1 : contents_start] == b"<"
        and prepared[contents_end : contents_end + 1] == b">"
        and (contents_end - contents_start) % 2 == 0
    ):
        raise InvalidPlaceholder(
            "contents_start/contents_end do not delimit the /Contents placeholder of this "
            "document; pass the values returned by prepare together with its data."
        )
    hex_cms = binascii.hexlify(cms_der).upper()
    room = contents_end - contents_start
    if len(hex_cms) > room:
        raise SignatureTooLarge(
            f"The signature is {len(cms_der):,} bytes but only {room // 2:,} bytes were reserved; "
            "prepare the document again with a larger signature_size."
        )
    view = memoryview(prepared)
    return b"".join(
        (head, view[:contents_start], hex_cms, b"0" * (room - len(hex_cms)), view[contents_end:])
    )
