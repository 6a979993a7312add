"""Ids in requests are checked for shape before any lookup.

A malformed id cannot name anything: answering NOT_FOUND would make a typo look like a
missing resource, and echoing it back would hand an unbounded client string to every log and
message on the way. It is INVALID_ARGUMENT (reason ``MALFORMED_ID``, a ``BadRequest``
violation of the field) and the message gives its length, never its text.
"""

from __future__ import annotations

import uuid

from meterai_common.grpc_errors import RequestError

__all__ = ["require_uuid"]


def require_uuid(value: str, field: str) -> str:
    """``value`` if it is a UUID in its canonical 36-character form; raises otherwise."""
    try:
        canonical = len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        canonical = False
    if not canonical:
        what = "is empty" if not value else f"has {len(value)} characters and is not one"
        raise RequestError(
            "INVALID_ARGUMENT",
            f"{field} must be an id the platform returned (a UUID, 36 characters); "
            f"the one sent {what}",
            reason="MALFORMED_ID",
            field=field,
        )
    return value
