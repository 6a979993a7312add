"""The signature dictionary, its byte range, and embedding the CMS afterwards.

PAdES signs the whole file except the hex string of ``/Contents``.  The
dictionary is written with fixed-width placeholders, so once the file layout
is final the ``/ByteRange`` can be patched in place and the digest computed
without moving a byte; the CMS then drops into the zero-filled hole.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from .errors import InvalidPlaceholder, SignatureTooLarge
from .pdf_syntax import pdf_date, pdf_text

__all__ = [
    "SignedRegion",
    "byte_range_digest",
    "embed_signature",
    "fill_byte_range",
    "signature_dictionary",
]

_BYTE_RANGE_KEY = b"/ByteRange "
_BYTE_RANGE_WIDTH = 48
"""Room for ``[0 a b c]`` with three offsets of up to 15 digits each."""
_CONTENTS_KEY = b"/Contents <"

SignedRegion = tuple[int, int, tuple[int, int, int, int]]
"""``(contents_start, contents_end, byte_range)``."""


def signature_dictionary(signature_size: int, signing_time: datetime, reason: str) -> bytes:
    """Body of the ``/Type /Sig`` dictionary with placeholders for range and CMS.

    ``/ETSI.CAdES.detached`` makes it a PAdES baseline signature; the
    ``/Adobe.PPKLite`` filter is what every validator expects alongside it.
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
            pdf_date(signing_time),
            b" /Reason ",
            pdf_text(reason),
            b" >>",
        )
    )


def fill_byte_range(out: bytearray, body_offset: int, signature_size: int) -> SignedRegion:
    """Write the final ``/ByteRange`` into the signature dictionary at *body_offset*.

    The range covers everything but ``<...>`` of ``/Contents``, delimiters
    included, as ISO 32000 requires.
    """
    range_at = out.index(_BYTE_RANGE_KEY, body_offset) + len(_BYTE_RANGE_KEY)
    contents_start = out.index(_CONTENTS_KEY, body_offset) + len(_CONTENTS_KEY)
    contents_end = contents_start + 2 * signature_size
    after = contents_end + 1
    byte_range = (0, contents_start - 1, after, len(out) - after)
    text = b"[%d %d %d %d]" % byte_range
    out[range_at : range_at + _BYTE_RANGE_WIDTH] = text.ljust(_BYTE_RANGE_WIDTH)
    return contents_start, contents_end, byte_range


def byte_range_digest(data: bytes | bytearray, byte_range: tuple[int, int, int, int]) -> bytes:
    """SHA-256 over the two signed ranges: the only work proportional to file size."""
    view = memoryview(data)
    h = hashlib.sha256(view[byte_range[0] : byte_range[0] + byte_range[1]])
    h.update(view[byte_range[2] : byte_range[2] + byte_range[3]])
    return h.digest()


def embed_signature(
    prepared: bytes, contents_start: int, contents_end: int, cms_der: bytes
) -> bytes:
    """Put the DER-encoded CMS into the ``/Contents`` placeholder of a prepared file.

    The rest of the file is untouched, so the digest the CMS signs stays valid.
    The CMS is written as upper-case hex followed by the zero padding the
    placeholder reserved (trailing zeros are ignored by DER parsers).

    :raises SignatureTooLarge: the CMS needs more room than was reserved.
    :raises InvalidPlaceholder: the offsets do not delimit a placeholder.
    """
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
    hex_cms = cms_der.hex().upper().encode()
    room = contents_end - contents_start
    if len(hex_cms) > room:
        raise SignatureTooLarge(
            f"The signature is {len(cms_der):,} bytes but only {room // 2:,} bytes were reserved; "
            "prepare the document again with a larger signature_size."
        )
    return b"".join(
        (
            prepared[:contents_start],
            hex_cms,
            b"0" * (room - len(hex_cms)),
            prepared[contents_end:],
        )
    )
