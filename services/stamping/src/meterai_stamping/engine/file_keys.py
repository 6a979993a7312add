"""Opening an encrypted document: its file key derived once, and reused for the same document.

For AES-256 (security handler revision 6) every password check is the
ISO 32000-2 hash (algorithm 2.B): dozens of AES and SHA-2 rounds by design,
about 2 ms each in pypdf.  pypdf's reader tests a password against the owner
entry first and then the user entry, three such hashes for the empty user
password that most encrypted documents have.  Here the user entry is tested
first when no password (or the empty one) is given, which takes two, and
the derived key is remembered for the same document and password: the next
seal on our own output (same ``/Encrypt`` dictionary, same ``/ID``) and a
retried request skip the derivation entirely.

The cache is keyed by a SHA-256 digest of the encryption dictionary's values,
the first ``/ID`` string and the password, so a hit needs the very password
that opened the document before; it holds at most :data:`_CAPACITY` keys of
this process and never leaves it.  The ciphers and the key derivation are
pypdf's (``pypdf._encryption``), nothing here is new cryptography.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from pypdf import PasswordType
from pypdf._encryption import AlgV5, Encryption

__all__ = ["forget_file_keys", "open_with_password"]

_CAPACITY = 64
"""Documents whose keys are kept; a few kilobytes in all."""

_KEYS: OrderedDict[bytes, tuple[bytes, PasswordType, bool]] = OrderedDict()
_LOCK = threading.Lock()


def open_with_password(encryption: Encryption, password: str) -> PasswordType:
    """Derive (or recall) the file key of *encryption* for *password*; return which password it was.

    On success the key is set on *encryption*, as pypdf's own ``verify`` does.
    """
    fingerprint = _fingerprint(encryption, password)
    with _LOCK:
        known = _KEYS.get(fingerprint)
        if known is not None:
            _KEYS.move_to_end(fingerprint)
    if known is None:
        kind = _verify(encryption, password)
        if kind == PasswordType.NOT_DECRYPTED or encryption._key is None:
            return PasswordType.NOT_DECRYPTED
        known = (encryption._key, kind, encryption._are_permissions_valid)
        with _LOCK:
            _KEYS[fingerprint] = known
            while len(_KEYS) > _CAPACITY:
                _KEYS.popitem(last=False)
    encryption._key, encryption._password_type, encryption._are_permissions_valid = known
    return known[1]


def forget_file_keys() -> None:
    """Drop every remembered key (for measuring the first opening of a document)."""
    with _LOCK:
        _KEYS.clear()


def _verify(encryption: Encryption, password: str) -> PasswordType:
    """pypdf's password check, user entry first for the empty AES-256 password."""
    if encryption.V < 5 or password:
        return encryption.verify(password)
    values = encryption.values
    key = AlgV5.verify_user_password(encryption.R, b"", values.U, values.UE)
    if not key:
        return encryption.verify(password)  # the owner entry (an empty owner password)
    encryption._are_permissions_valid = AlgV5.verify_perms(
        key, values.Perms, encryption.P, encryption.EncryptMetadata
    )
    encryption._key = key
    encryption._password_type = PasswordType.USER_PASSWORD
    return PasswordType.USER_PASSWORD


def _fingerprint(encryption: Encryption, password: str) -> bytes:
    values = encryption.values
    digest = hashlib.sha256()
    for part in (
        b"%d %d %d %d %d"
        % (encryption.V, encryption.R, encryption.Length, encryption.P, encryption.EncryptMetadata),
        encryption.StmF.encode(),
        encryption.StrF.encode(),
        bytes(encryption.id1_entry),
        *(bytes(getattr(values, name, b"") or b"") for name in ("O", "U", "OE", "UE", "Perms")),
        password.encode("utf-8", "surrogatepass"),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()
