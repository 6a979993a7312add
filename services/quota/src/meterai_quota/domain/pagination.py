"""Opaque page tokens for keyset pagination.

A token is the sort key of the last row served plus the name of the listing, base64url-encoded.
Keyset pagination keeps each page an index range scan however deep the client pages, and stays
stable while new rows are appended; tagging tokens with the listing stops a token from one list
being replayed against another.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import InvalidArgument, InvalidPageToken

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "clamp_page_size", "decode_token", "encode_token"]

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def clamp_page_size(requested: int | None) -> int:
    """Clamp a requested page size: ``None`` or 0 means the default, above the cap means the cap."""
    if requested is None or requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested < 0:
        raise InvalidArgument("page_size cannot be negative")
    return min(requested, MAX_PAGE_SIZE)


def encode_token(listing: str, key: list[Any]) -> str:
    raw = json.dumps([listing, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(listing: str, token: str, shape: tuple[type, ...]) -> list[Any]:
    """Return the sort key stored in ``token``, checked against ``shape`` (one type per key
    part), or raise :class:`InvalidPageToken`."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        tag, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as error:
        raise InvalidPageToken("page token is not valid") from error
    if tag != listing:
        raise InvalidPageToken("page token belongs to another listing")
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(type(part) is kind for part, kind in zip(key, shape, strict=True))
    ):
        raise InvalidPageToken("page token is not valid")
    return key
