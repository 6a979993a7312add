"""The signing tier's one error tree: every error a signature can end in.

Two kinds matter to a caller. A :class:`SigningError` that is *not* a :class:`SigningUnavailable`
is final: the request, the key or an answer from a service is wrong, and asking again cannot
help, so the job fails and is refunded. A :class:`SigningUnavailable` means something the
signature needs (the key's token, the timestamp authority) is away for now: the job keeps its
place and is tried again until its deadline.
"""

from __future__ import annotations

__all__ = [
    "DigestLengthError",
    "IdentityError",
    "KeyUnavailable",
    "SigningError",
    "SigningUnavailable",
    "TimestampError",
    "TimestampUnavailable",
    "UnsupportedKeyError",
]


class SigningError(Exception):
    """Base of every error this package raises; the worker maps it to a failed job."""


class IdentityError(SigningError):
    """The key or certificates cannot be used: unreadable, or the certificate is not the key's."""


class UnsupportedKeyError(IdentityError):
    """The key type or size is not one PAdES baseline profiles (and this package) accept."""


class DigestLengthError(SigningError):
    """The digest is not 32 bytes, so it is not the SHA-256 the stamper computes."""


class SigningUnavailable(SigningError):
    """Something the signature needs is away for now; the same request may succeed later."""

    code = "UNAVAILABLE"


class KeyUnavailable(SigningUnavailable):
    """The key's token (HSM) did not answer within the retry budget."""


class TimestampError(SigningError):
    """The timestamp authority answered with something that is not a usable token for this
    request (garbage, a rejection, a token for another imprint or too large): final."""


class TimestampUnavailable(SigningUnavailable):
    """The timestamp authority could not be reached or did not answer in time."""
