"""Opening an encrypted document: its file key derived once, and reused for the same document.

For AES-256 (security handler revision 6) every password hash is the
ISO 32000-2 hash (algorithm 2.B): dozens of AES and SHA-2 rounds by design,
about 0.6 ms each in pypdf, most of it a new cipher object per round.
pypdf's reader checks a password against the owner entry first and then the
user entry, two hashes each (one to validate the password, one for the key
that unwraps the file key): four for the empty user password that most
encrypted documents have.

Here the empty password is tried on the user entry first and with one hash:
the key-salt hash unwraps ``/UE``, and the file key it yields is accepted
only if it decrypts ``/Perms`` to the document's own ``/P`` and the ``adb``
marker (algorithm 13, 96 bits that a wrong key matches with probability
2**-96).  Any other outcome (a wrong password, a document whose ``/Perms``
does not match) falls back to pypdf's full check, so what opens and with
which permission status is unchanged.  The derived key is also remembered
for the same document and password: the next seal on our own output (same
``/Encrypt`` dictionary, same ``/ID``) and a retried request skip the
derivation entirely.

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
from pypdf._crypt_providers import aes_cbc_decrypt
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
    """pypdf's password check, preceded for the empty AES-256 password by a one-hash try."""
    if encryption.V < 5 or password:
        return encryption.verify(password)
    key = _user_key_checked_by_perms(encryption, b"")
    if key is None:
        return encryption.verify(password)  # a user password, or the owner entry: full check
    encryption._are_permissions_valid = True
    encryption._key = key
    encryption._password_type = PasswordType.USER_PASSWORD
    return PasswordType.USER_PASSWORD


def _user_key_checked_by_perms(encryption: Encryption, password: bytes) -> bytes | None:
    """The file key unwrapped from ``/UE`` for *password*, or None unless ``/Perms`` confirms it.

    Algorithm 2.A derives the key with the user key salt (``U[40:48]``);
    algorithm 13 decrypts ``/Perms`` with that key and finds ``/P``, the
    ``EncryptMetadata`` flag and ``adb``.  The separate validation hash
    (``U[32:40]``) would only say earlier what this says too.
    """
    values = encryption.values
    user = bytes(values.U)
    if len(user) < 48 or len(bytes(values.UE)) != 32 or len(bytes(values.Perms)) != 16:
        return None
    wrapping = AlgV5.calculate_hash(encryption.R, password[:127], user[40:48], b"")
    key = aes_cbc_decrypt(wrapping, bytes(16), bytes(values.UE))
    if not AlgV5.verify_perms(key, values.Perms, encryption.P, encryption.EncryptMetadata):
        return None
    return key


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
