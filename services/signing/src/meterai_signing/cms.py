"""PAdES baseline B-B signature containers for a digest computed elsewhere.

The signing worker never sees a document: the stamping service hashes the PDF
``/ByteRange`` and sends only that SHA-256 digest. This module turns the digest
into the detached CMS ``SignedData`` that goes into the signature dictionary's
``/Contents`` (``/SubFilter /ETSI.CAdES.detached``).

What the container holds, and why:

* signed attributes ``content-type`` (id-data), ``message-digest`` and
  ``signing-certificate-v2`` — the set ETSI EN 319 142-1 requires for B-B.
  ``signing-certificate-v2`` binds the signer certificate into the signature so
  it cannot be swapped for another certificate with the same key.
* no ``signing-time``: PAdES forbids it and puts the claimed time in the
  signature dictionary's ``/M`` instead.
* the whole certificate chain, so validators can build the path offline.

Everything that does not depend on the digest — parsed certificates, the
``signing-certificate-v2`` attribute, algorithm identifiers — is built once in
:class:`SigningIdentity`; a signature then costs one private-key operation plus
encoding a few small structures.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from asn1crypto import algos, cms, core, tsp, x509
from cryptography import x509 as cx509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from meterai_signing.errors import (
    DigestLengthError,
    IdentityError,
    SigningError,
    UnsupportedKeyError,
)
from meterai_signing.keys import InMemoryKey, KeySigner
from meterai_signing.timestamps import TimestampSource

__all__ = [
    "DIGEST_LENGTH",
    "DigestLengthError",
    "IdentityError",
    "SigningError",
    "SigningIdentity",
    "UnsupportedKeyError",
    "identity_for_key",
    "identity_from_pem",
    "load_identity",
    "sign_digest",
    "signature_size",
]

DIGEST_LENGTH = 32
"""Length in bytes of the SHA-256 document digest :func:`sign_digest` accepts."""

_Value = TypeVar("_Value", bound=core.Asn1Value)


def _frozen(value: _Value, implicit: int | None = None) -> _Value:
    """Re-read a constructed value from its own DER so asn1crypto treats it as pristine.

    asn1crypto marks every value built from Python data as *mutated*, and a
    mutated value re-encodes its whole subtree each time its contents are read
    — several times per ``dump()`` of every enclosing level. Embedding a
    three-certificate chain that way costs milliseconds per signature. A value
    parsed from DER stays unparsed until read and dumps its cached bytes, and
    copying it (which asn1crypto does to re-tag a value for an implicitly or
    explicitly tagged field) is shallow. ``implicit`` pre-applies the tag of
    the field the value will sit in, so placing it there copies nothing.
    """
    loaded = type(value).load(value.dump())
    return loaded if implicit is None else loaded.retag({"implicit": implicit})


_SHA256 = _frozen(algos.DigestAlgorithm({"algorithm": "sha256"}))
_DETACHED_DATA = _frozen(cms.ContentInfo({"content_type": "data"}))
"""Detached signature: the content type is declared, the content (the PDF) left out."""


def _spki(certificate: x509.Certificate) -> bytes:
    """The certificate's public key re-encoded by ``cryptography``, to compare with a key."""
    try:
        public_key = serialization.load_der_public_key(certificate.public_key.dump())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise IdentityError(f"cannot read the certificate's public key: {exc}") from exc
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True, eq=False)
class SigningIdentity:
    """A private key with its certificate chain, parsed and pre-encoded once.

    Build it with :func:`load_identity` or :func:`identity_from_pem`; a worker
    keeps one for its lifetime and signs many digests with it.
    """

    key: KeySigner
    """The signer's key (in memory or in a token); only :func:`sign_digest` uses it."""

    certificates: tuple[x509.Certificate, ...]
    """Signer certificate first, then intermediates (and the root, if supplied); all embedded."""

    _signature_algorithm: cms.SignedDigestAlgorithm = field(init=False, repr=False)
    _sid: cms.SignerIdentifier = field(init=False, repr=False)
    _content_type_attr: cms.CMSAttribute = field(init=False, repr=False)
    _signing_certificate_attr: cms.CMSAttribute = field(init=False, repr=False)
    _certificate_set: cms.CertificateSet = field(init=False, repr=False)
    _digest_algorithms: cms.DigestAlgorithms = field(init=False, repr=False)
    _max_signature_length: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        key = self.key
        if not self.certificates:
            raise IdentityError("the certificate chain is empty")
        signer = self.certificates[0]
        if _spki(signer) != key.public_key_der:
            raise IdentityError(
                "the first certificate does not belong to the private key; "
                "validators would reject every signature"
            )
        algorithm = key.algorithm
        sid = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value=cms.IssuerAndSerialNumber(
                {"issuer": signer.issuer, "serial_number": signer.serial_number}
            ),
        )
        # hash_algorithm is left out on purpose: SHA-256 is the DER default and
        # must then be omitted, or strict decoders reject the attribute.
        ess_cert_id = tsp.ESSCertIDv2(
            {
                "cert_hash": hashlib.sha256(signer.dump()).digest(),
                "issuer_serial": tsp.IssuerSerial(
                    {
                        "issuer": [x509.GeneralName(name="directory_name", value=signer.issuer)],
                        "serial_number": signer.serial_number,
                    }
                ),
            }
        )
        signing_certificate = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [tsp.SigningCertificateV2({"certs": [ess_cert_id]})],
            }
        )
        content_type = cms.CMSAttribute({"type": "content_type", "values": ["data"]})
        certificate_set = cms.CertificateSet(
            [cms.CertificateChoices(name="certificate", value=c) for c in self.certificates]
        )
        set_ = object.__setattr__
        set_(
            self,
            "_signature_algorithm",
            _frozen(algos.SignedDigestAlgorithm({"algorithm": algorithm})),
        )
        set_(self, "_sid", _frozen(sid))
        set_(self, "_content_type_attr", _frozen(content_type))
        set_(self, "_signing_certificate_attr", _frozen(signing_certificate))
        set_(self, "_certificate_set", _frozen(certificate_set, implicit=0))
        set_(self, "_digest_algorithms", _frozen(cms.DigestAlgorithms([_SHA256])))
        set_(self, "_max_signature_length", key.max_signature_length)

    @property
    def signer_certificate(self) -> x509.Certificate:
        """The certificate whose key signs; what ``signing-certificate-v2`` points at."""
        return self.certificates[0]

    @property
    def key_label(self) -> str:
        """Where the key lives and its type, e.g. ``memory RSA-2048``, for logs and audit."""
        return self.key.key_label


def identity_from_pem(
    key_pem: bytes, chain_pem: bytes, password: bytes | None = None
) -> SigningIdentity:
    """Build a :class:`SigningIdentity` over an in-memory key from PEM data.

    :param key_pem: The private key, PKCS#8 or traditional PEM, optionally encrypted.
    :param chain_pem: One or more PEM certificates: signer, intermediates, optionally root.
    :param password: Password of an encrypted key, or ``None``.
    :raises IdentityError: If the key or chain cannot be read, or no certificate matches the key.
    :raises UnsupportedKeyError: If the key is not RSA (2048/3072/4096) or ECDSA P-256.
    """
    try:
        key = serialization.load_pem_private_key(key_pem, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise IdentityError(f"cannot read the signing key: {exc}") from exc
    return identity_for_key(InMemoryKey(key), chain_pem)


def identity_for_key(key: KeySigner, chain_pem: bytes) -> SigningIdentity:
    """Build a :class:`SigningIdentity` for ``key`` wherever it lives (memory, token).

    The certificate that matches the key becomes the signer wherever it
    sits in the bundle; the others keep their order. Matching on the key rather
    than trusting the bundle order means a chain file written root-first still
    produces a correct ``signing-certificate-v2`` attribute.

    :raises IdentityError: If the chain cannot be read or no certificate matches the key.
    """
    try:
        parsed = cx509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise IdentityError(f"cannot read the certificate chain: {exc}") from exc
    certificates = [
        x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in parsed
    ]
    key_der = key.public_key_der
    signer_index = next((i for i, cert in enumerate(certificates) if _spki(cert) == key_der), None)
    if signer_index is None:
        raise IdentityError("no certificate in the chain matches the signing key")
    signer = certificates.pop(signer_index)
    return SigningIdentity(key=key, certificates=(signer, *certificates))


def load_identity(
    key_pem_path: Path | str, chain_pem_path: Path | str, password: bytes | None = None
) -> SigningIdentity:
    """Read a key and its chain from PEM files; see :func:`identity_from_pem`.

    :param key_pem_path: Private key file.
    :param chain_pem_path: Certificate bundle file: signer, intermediates, optionally root.
    :param password: Password of an encrypted key, or ``None``.
    :raises IdentityError: If a file cannot be read or its contents are unusable.
    """
    try:
        key_pem = Path(key_pem_path).read_bytes()
        chain_pem = Path(chain_pem_path).read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read signing identity files: {exc}") from exc
    return identity_from_pem(key_pem, chain_pem, password)


def _signed_attributes(identity: SigningIdentity, digest: bytes) -> bytes:
    """DER of the signed attributes as signed: a universal SET OF, not the ``[0]`` field form."""
    # DER requires SET OF elements in ascending order of their encodings. The
    # three attributes differ in their encoded length octet (0x18, 0x2f, then a
    # long form 0x81/0x82 for signing-certificate-v2), so this order is the
    # sorted order for every digest and certificate.
    attributes = cms.CMSAttributes(
        [
            identity._content_type_attr,
            _frozen(cms.CMSAttribute({"type": "message_digest", "values": [digest]})),
            identity._signing_certificate_attr,
        ]
    )
    der: bytes = attributes.dump()
    return der


def _content_info(
    identity: SigningIdentity,
    signed_attrs_der: bytes,
    signature: bytes,
    timestamp_token: bytes | None = None,
) -> cms.ContentInfo:
    # Each level is frozen before it is nested; see _frozen for why.
    fields: dict[str, object] = {
        "version": "v1",
        "sid": identity._sid,
        "digest_algorithm": _SHA256,
        "signed_attrs": cms.CMSAttributes.load(signed_attrs_der),
        "signature_algorithm": identity._signature_algorithm,
        "signature": signature,
    }
    if timestamp_token is not None:
        # The signature timestamp of PAdES B-T: a token over the signature value, carried
        # unsigned because it is made after the signature.
        fields["unsigned_attrs"] = cms.CMSAttributes(
            [
                cms.CMSAttribute(
                    {
                        "type": "signature_time_stamp_token",
                        "values": [cms.ContentInfo.load(timestamp_token)],
                    }
                )
            ]
        )
    signer_info = _frozen(cms.SignerInfo(fields))
    signed_data = _frozen(
        cms.SignedData(
            {
                "version": "v1",
                "digest_algorithms": identity._digest_algorithms,
                "encap_content_info": _DETACHED_DATA,
                "certificates": identity._certificate_set,
                "signer_infos": cms.SignerInfos([signer_info]),
            }
        )
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})


def sign_digest(
    identity: SigningIdentity,
    digest: bytes,
    timestamper: TimestampSource | None = None,
) -> bytes:
    """Sign a document digest and return the detached CMS ``SignedData`` as DER.

    :param identity: Key and chain to sign with.
    :param digest: SHA-256 of the PDF ``/ByteRange``, exactly 32 bytes.
    :param timestamper: With one, the signature value is timestamped (PAdES B-T); without,
        the container is B-B.
    :return: DER ``ContentInfo``, never longer than :func:`signature_size` for the same
        timestamper's bound.
    :raises DigestLengthError: If ``digest`` is not 32 bytes.
    :raises SigningError: If the key operation or the timestamp fails for good.
    :raises meterai_signing.errors.SigningUnavailable: If the key's token or the timestamp
        authority is away for now.
    """
    if not isinstance(digest, bytes | bytearray | memoryview):
        raise DigestLengthError(f"digest must be bytes, not {type(digest).__name__}")
    digest = bytes(digest)
    if len(digest) != DIGEST_LENGTH:
        raise DigestLengthError(
            f"digest must be {DIGEST_LENGTH} bytes (SHA-256), got {len(digest)}"
        )
    signed_attrs = _signed_attributes(identity, digest)
    signature = identity.key.sign_raw(signed_attrs)
    token = None
    if timestamper is not None:
        token = timestamper.timestamp(hashlib.sha256(signature).digest())
    der: bytes = _content_info(identity, signed_attrs, signature, token).dump()
    return der


def _filler_token(size: int) -> bytes:
    """A DER ``ContentInfo`` exactly ``size`` bytes long, standing in for a timestamp token."""
    for content_length in range(size, 0, -1):
        der: bytes = cms.ContentInfo(
            {"content_type": "data", "content": core.OctetString(bytes(content_length))}
        ).dump()
        if len(der) == size:
            return der
        if len(der) < size:
            break
    raise ValueError(f"no ContentInfo is exactly {size} bytes long")


def signature_size(identity: SigningIdentity, timestamp_token_bound: int = 0) -> int:
    """Upper bound, in bytes, of every DER CMS :func:`sign_digest` returns for ``identity``.

    The PDF placeholder (``/Contents``, hex-encoded, so twice this many hex
    digits) is reserved before the signature exists, so the bound must hold
    for every digest. The container is encoded with the longest signature value
    the key can produce, derived from the key size; DER length headers
    only grow with their content, so no real signature can come out longer.
    For RSA the result is exact; for ECDSA P-256 it is the exact maximum, hit
    by roughly one signature in four.

    :param timestamp_token_bound: With B-T, the largest timestamp token the authority in use
        returns (:attr:`TimestampSource.token_size_bound`); the container is then encoded
        with a stand-in token of exactly that size.
    """
    placeholder_digest = bytes(DIGEST_LENGTH)
    signed_attrs = _signed_attributes(identity, placeholder_digest)
    longest = bytes(identity._max_signature_length)
    token = _filler_token(timestamp_token_bound) if timestamp_token_bound > 0 else None
    return len(_content_info(identity, signed_attrs, longest, token).dump())
