"""The one private-key operation behind every signature, as a seam.

:class:`KeySigner` is the protocol every key implements, shaped like pyHanko's ``Signer``: it
knows its public key and signature algorithm and signs bytes (``sign_raw``), nothing more. The
CMS builder (:mod:`meterai_signing.cms`) depends on this protocol only, so where the key lives is
a deployment choice:

* :class:`InMemoryKey` holds a ``cryptography`` private key read from a PEM file (development,
  tests, and platforms without an HSM);
* :class:`meterai_signing.pkcs11_key.Pkcs11Key` keeps the key inside a PKCS#11 token, where the
  signing process can use it but never read it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from meterai_signing.errors import SigningError, UnsupportedKeyError

__all__ = [
    "InMemoryKey",
    "KeySigner",
    "PublicHalf",
    "check_key_shape",
    "max_signature_length",
]

RSA_KEY_SIZES = frozenset({2048, 3072, 4096})
EC_CURVES = frozenset({"secp256r1"})

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@runtime_checkable
class KeySigner(Protocol):
    """Signs bytes with the platform key; the only object that may touch the key."""

    @property
    def public_key_der(self) -> bytes:
        """The key's ``SubjectPublicKeyInfo`` (DER), to match it with its certificate."""
        ...

    @property
    def algorithm(self) -> str:
        """asn1crypto name of the signature algorithm: ``sha256_rsa`` or ``sha256_ecdsa``."""
        ...

    @property
    def key_label(self) -> str:
        """Where the key lives and what it is, e.g. ``pkcs11:meterai/signer RSA-2048``, for
        logs and the audit trail."""
        ...

    @property
    def max_signature_length(self) -> int:
        """Longest signature value (DER for ECDSA) :meth:`sign_raw` can return."""
        ...

    def sign_raw(self, data: bytes) -> bytes:
        """SHA-256 ``data`` and sign it: PKCS#1 v1.5 for RSA, a DER ``ECDSA-Sig-Value`` for EC.

        :raises SigningError: if the key operation fails for good.
        :raises meterai_signing.errors.KeyUnavailable: if the key's token is away for now.
        """
        ...


def check_key_shape(kind: str, size_or_curve: int | str) -> None:
    """Refuse key types PAdES baseline profiles (and this package) do not accept.

    :param kind: ``RSA`` or ``EC``.
    :param size_or_curve: RSA modulus bits, or the EC curve's name.
    :raises UnsupportedKeyError: for anything but RSA 2048/3072/4096 or ECDSA P-256.
    """
    if kind == "RSA":
        if size_or_curve not in RSA_KEY_SIZES:
            raise UnsupportedKeyError(
                f"RSA keys must be 2048, 3072 or 4096 bits, this one has {size_or_curve}"
            )
        return
    if kind == "EC":
        if size_or_curve not in EC_CURVES:
            raise UnsupportedKeyError(f"ECDSA keys must be on P-256, not {size_or_curve}")
        return
    raise UnsupportedKeyError(f"only RSA and ECDSA P-256 keys can sign, not {kind}")


def max_signature_length(kind: str, bits: int) -> int:
    """Longest signature value a key of ``kind`` and ``bits`` can produce.

    RSA PKCS#1 v1.5 signatures are always exactly the modulus length. An ECDSA
    signature is ``SEQUENCE { INTEGER r, INTEGER s }`` whose integers drop
    leading zero bytes and gain a 0x00 when the top bit is set, so its length
    varies; the bound is both integers at full width plus the sign byte.
    """
    if kind == "RSA":
        return (bits + 7) // 8
    integer = (bits + 7) // 8 + 1
    integer_tlv = 2 + integer  # tag, one-byte length (≤ 127 for every supported curve)
    body = 2 * integer_tlv
    return 2 + body if body < 128 else 3 + body


class PublicHalf:
    """What a :class:`KeySigner` knows from its public key alone, shared by the implementations.

    Subclasses set ``_kind`` (``RSA`` or ``EC``), ``_bits`` and ``_public_key_der``.
    """

    _kind: str
    _bits: int
    _public_key_der: bytes

    @property
    def public_key_der(self) -> bytes:
        return self._public_key_der

    @property
    def algorithm(self) -> str:
        return "sha256_rsa" if self._kind == "RSA" else "sha256_ecdsa"

    @property
    def max_signature_length(self) -> int:
        return max_signature_length(self._kind, self._bits)

    @property
    def key_type(self) -> str:
        """``RSA-2048``, ``ECDSA-secp256r1`` ...: the type part of a key label."""
        return f"RSA-{self._bits}" if self._kind == "RSA" else "ECDSA-secp256r1"


class InMemoryKey(PublicHalf):
    """A :class:`KeySigner` over a private key held in this process's memory."""

    def __init__(self, private_key: object) -> None:
        """
        :param private_key: a ``cryptography`` RSA or EC private key.
        :raises UnsupportedKeyError: if it is not RSA 2048/3072/4096 or ECDSA P-256.
        """
        if isinstance(private_key, rsa.RSAPrivateKey):
            check_key_shape("RSA", private_key.key_size)
            self._kind, self._bits = "RSA", private_key.key_size
        elif isinstance(private_key, ec.EllipticCurvePrivateKey):
            check_key_shape("EC", private_key.curve.name)
            self._kind, self._bits = "EC", private_key.curve.key_size
        else:
            check_key_shape(type(private_key).__name__, 0)
        self._key: PrivateKey = private_key  # type: ignore[assignment]
        self._public_key_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        return f"InMemoryKey({self.key_label})"

    @property
    def key_label(self) -> str:
        return f"memory {self.key_type}"

    def sign_raw(self, data: bytes) -> bytes:
        try:
            if isinstance(self._key, rsa.RSAPrivateKey):
                return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            return self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SigningError(f"{self.key_label} signing failed: {exc}") from exc
