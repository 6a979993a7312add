"""Throw-away PKI for development, tests and the embedded ``meterai up`` platform.

Production signing keys come from a real CA (and usually live in an HSM); this
module only exists so that a fresh checkout can sign and verify documents with
no outside material. It writes a three-level hierarchy — root CA, intermediate
CA, document signer — because that is the shape of real e-meterai chains and
the shape validators have to walk: a two-level test PKI would hide bugs in
chain embedding.

Nothing here is secret: the keys are generated on the spot and the directory
is the only place they live.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meterai_signing.cms import UnsupportedKeyError

__all__ = [
    "KeyType",
    "TestPki",
    "crl_url",
    "ensure_test_pki",
    "generate_test_pki",
    "issue_signer_certificate",
    "ocsp_url",
]

KeyType = Literal["rsa2048", "rsa3072", "ecdsa-p256"]
"""Key types the signer supports; the CAs always use the same type as the signer."""

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_ROOT_CERT = "root-ca.pem"
_INTERMEDIATE_CERT = "intermediate-ca.pem"
_SIGNER_CERT = "signer.pem"
_CHAIN = "chain.pem"
_SIGNER_KEY = "signer-key.pem"
_INTERMEDIATE_KEY = "intermediate-ca-key.pem"
_TSA_CERT = "tsa.pem"
_TSA_KEY = "tsa-key.pem"
_ROOT_KEY = "root-ca-key.pem"
_REVOCATION_URL = "revocation-url.txt"

_CA_VALIDITY = dt.timedelta(days=20 * 365)
_INTERMEDIATE_VALIDITY = dt.timedelta(days=10 * 365)
_SIGNER_VALIDITY = dt.timedelta(days=5 * 365)
_TSA_VALIDITY = dt.timedelta(days=8 * 365)
"""Longer than the signer's: a B-LT seal stays verifiable after the signer certificate expires
for as long as the timestamp authority's certificate does (and, B-LTA, beyond it)."""
_BACKDATE = dt.timedelta(hours=1)
"""Certificates start slightly in the past so clock skew never makes them 'not yet valid'."""


@dataclass(frozen=True)
class TestPki:
    """Where the generated PKI lives on disk."""

    __test__ = False  # a result type, not a pytest test class

    directory: Path
    """The directory holding every file below."""

    root_cert: Path
    """Self-signed root CA certificate (PEM); the trust anchor validators must be given."""

    intermediate_cert: Path
    """Intermediate CA certificate (PEM), issued by the root."""

    signer_cert: Path
    """Document-signer certificate (PEM), issued by the intermediate."""

    chain: Path
    """Signer certificate then the intermediate (PEM bundle), the form ``load_identity`` reads."""

    signer_key: Path
    """Signer private key (unencrypted PKCS#8 PEM, file mode 0600)."""

    intermediate_key: Path
    """Intermediate CA key (0600): issues the certificate of a key generated in a token and
    the timestamp authority's certificate. A test CA only; a real CA keeps this offline."""

    tsa_cert: Path
    """Timestamp authority certificate (PEM), issued by the intermediate for timeStamping."""

    tsa_key: Path
    """Timestamp authority private key (0600), read only by ``meterai serve tsa``."""

    root_key: Path
    """Root CA key (0600): signs the root's CRL and OCSP answers about the intermediate, so
    that the test PKI can publish revocation data for the whole chain (a test CA only)."""

    revocation_url_file: Path
    """Holds the base URL the certificates' CRL distribution points and OCSP addresses
    start with (absent: the certificates name none, and B-LT cannot be reached)."""

    @property
    def revocation_url(self) -> str | None:
        """The base URL of the PKI's CRLs and OCSP responders, if it publishes any."""
        if not self.revocation_url_file.is_file():
            return None
        return self.revocation_url_file.read_text().strip() or None


def _paths(directory: Path) -> TestPki:
    return TestPki(
        directory=directory,
        root_cert=directory / _ROOT_CERT,
        intermediate_cert=directory / _INTERMEDIATE_CERT,
        signer_cert=directory / _SIGNER_CERT,
        chain=directory / _CHAIN,
        signer_key=directory / _SIGNER_KEY,
        intermediate_key=directory / _INTERMEDIATE_KEY,
        tsa_cert=directory / _TSA_CERT,
        tsa_key=directory / _TSA_KEY,
        root_key=directory / _ROOT_KEY,
        revocation_url_file=directory / _REVOCATION_URL,
    )


def crl_url(base_url: str, issuer: str) -> str:
    """Where the test PKI publishes the CRL of ``issuer`` (``root`` or ``intermediate``)."""
    return f"{base_url.rstrip('/')}/crl/{issuer}.crl"


def ocsp_url(base_url: str, issuer: str) -> str:
    """Where the test PKI answers OCSP requests about certificates ``issuer`` issued."""
    return f"{base_url.rstrip('/')}/ocsp/{issuer}"


def _revocation_extensions(
    builder: x509.CertificateBuilder, base_url: str | None, issuer: str
) -> x509.CertificateBuilder:
    # Both a CRL distribution point and an OCSP address: validators differ in which they
    # try first, and the DSS then holds whichever the platform fetched.
    if base_url is None:
        return builder
    return builder.add_extension(
        x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    full_name=[x509.UniformResourceIdentifier(crl_url(base_url, issuer))],
                    relative_name=None,
                    reasons=None,
                    crl_issuer=None,
                )
            ]
        ),
        critical=False,
    ).add_extension(
        x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    x509.oid.AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(ocsp_url(base_url, issuer)),
                )
            ]
        ),
        critical=False,
    )


_DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
"""id-kp-documentSigning (RFC 9336): the purpose an e-meterai signer certificate serves."""


def _new_key(key_type: KeyType) -> _PrivateKey:
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise UnsupportedKeyError(
        f"unsupported key type {key_type!r}; use rsa2048, rsa3072 or ecdsa-p256"
    )


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ID"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _signer_key_usage() -> x509.KeyUsage:
    # nonRepudiation (content_commitment) is what marks a key as fit for
    # signatures a person or office stands behind, which a stamp-duty seal is.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    *,
    subject: x509.Name,
    subject_key: _PrivateKey,
    issuer: x509.Name,
    issuer_key: _PrivateKey,
    issuer_public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    now: dt.datetime,
    validity: dt.timedelta,
    ca_path_length: int | None,
    is_ca: bool,
    timestamping: bool = False,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | None = None,
    revocation_url: str | None = None,
    issuer_slug: str = "intermediate",
) -> x509.Certificate:
    public_key = public_key or subject_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=ca_path_length if is_ca else None),
            critical=True,
        )
        .add_extension(_ca_key_usage() if is_ca else _signer_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
            critical=False,
        )
    )
    builder = _revocation_extensions(builder, revocation_url, issuer_slug)
    if timestamping:
        # RFC 3161 §2.3: a TSA certificate has exactly this one purpose, marked critical.
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    elif not is_ca:
        # emailProtection beside documentSigning because NSS (poppler's
        # pdfsig, Firefox) checks signer certificates for the S/MIME purpose.
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    # Created with 0600 from the start: a chmod after writing would leave a window
    # in which the key is world-readable under a permissive umask.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def generate_test_pki(
    directory: Path,
    *,
    key_type: KeyType = "rsa2048",
    common_name: str = "meterai test signer",
    organization: str = "meterai test",
    revocation_url: str | None = None,
) -> TestPki:
    """Generate a root CA, an intermediate CA and a document signer, overwriting any old files.

    :param directory: Where to write the PEM files; created if missing.
    :param key_type: Key type for all three keys, so that a test run exercises
        one algorithm end to end.
    :raises UnsupportedKeyError: If ``key_type`` is not one of :data:`KeyType`.
    :param common_name: Common name of the signer certificate, which validators
        show as the signer's name.
    :param organization: Organization name put in all three subjects.
    :param revocation_url: Base URL of the PKI's revocation service
        (``meterai_signing.tsa_service`` serves ``/crl/…`` and ``/ocsp/…`` under it): every
        certificate below the root then names its issuer's CRL and OCSP responder there.
    :return: The paths of the files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    root_key = _new_key(key_type)
    root_name = _name(f"{organization} root CA", organization)
    root = _certificate(
        subject=root_name,
        subject_key=root_key,
        issuer=root_name,
        issuer_key=root_key,
        issuer_public_key=root_key.public_key(),
        now=now,
        validity=_CA_VALIDITY,
        ca_path_length=1,
        is_ca=True,
    )

    intermediate_key = _new_key(key_type)
    intermediate_name = _name(f"{organization} intermediate CA", organization)
    intermediate = _certificate(
        subject=intermediate_name,
        subject_key=intermediate_key,
        issuer=root_name,
        issuer_key=root_key,
        issuer_public_key=root_key.public_key(),
        now=now,
        validity=_INTERMEDIATE_VALIDITY,
        ca_path_length=0,
        is_ca=True,
        revocation_url=revocation_url,
        issuer_slug="root",
    )

    signer_key = _new_key(key_type)
    signer = _certificate(
        subject=_name(common_name, organization),
        subject_key=signer_key,
        issuer=intermediate_name,
        issuer_key=intermediate_key,
        issuer_public_key=intermediate_key.public_key(),
        now=now,
        validity=_SIGNER_VALIDITY,
        ca_path_length=None,
        is_ca=False,
        revocation_url=revocation_url,
    )

    tsa_key = _new_key(key_type)
    tsa = _certificate(
        subject=_name(f"{organization} timestamp authority", organization),
        subject_key=tsa_key,
        issuer=intermediate_name,
        issuer_key=intermediate_key,
        issuer_public_key=intermediate_key.public_key(),
        now=now,
        validity=_TSA_VALIDITY,
        ca_path_length=None,
        is_ca=False,
        timestamping=True,
        revocation_url=revocation_url,
    )

    pki = _paths(directory)
    if revocation_url is None:
        pki.revocation_url_file.unlink(missing_ok=True)
    else:
        pki.revocation_url_file.write_text(revocation_url.rstrip("/") + "\n")
    keys = (
        (pki.root_key, root_key),
        (pki.intermediate_key, intermediate_key),
        (pki.tsa_key, tsa_key),
    )
    for path, key in keys:
        _write_private(
            path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    pki.tsa_cert.write_bytes(_pem(tsa))
    _write_private(
        pki.signer_key,
        signer_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    pki.root_cert.write_bytes(_pem(root))
    pki.intermediate_cert.write_bytes(_pem(intermediate))
    pki.signer_cert.write_bytes(_pem(signer))
    pki.chain.write_bytes(_pem(signer) + _pem(intermediate))
    return pki


def ensure_test_pki(
    directory: Path,
    *,
    key_type: KeyType = "rsa2048",
    common_name: str = "meterai test signer",
    revocation_url: str | None = None,
) -> TestPki:
    """Return the test PKI in ``directory``, generating it only if any file is missing.

    The embedded platform calls this on every start, so that the first start
    creates a PKI and later ones keep signing with the same keys (documents
    signed yesterday stay verifiable against the same root today).

    :param directory: Where the PEM files live or are to be written.
    :param key_type: Key type used only when generating.
    :param common_name: Signer common name used only when generating.
    :param revocation_url: Base URL of the revocation service, used only when generating.
    :return: The paths of the PKI files.
    """
    pki = _paths(directory)
    required = (
        pki.root_cert,
        pki.intermediate_cert,
        pki.signer_cert,
        pki.chain,
        pki.signer_key,
        pki.intermediate_key,
        pki.tsa_cert,
        pki.tsa_key,
    )
    if all(path.is_file() for path in required):
        return pki
    return generate_test_pki(
        directory, key_type=key_type, common_name=common_name, revocation_url=revocation_url
    )


def issue_signer_certificate(
    pki: TestPki,
    public_key_der: bytes,
    *,
    common_name: str = "meterai token signer",
    organization: str = "meterai test",
) -> bytes:
    """Issue a document-signer certificate for a public key (one whose private half lives in
    a token) from the test intermediate; returns the chain PEM (signer, then intermediate).

    :raises UnsupportedKeyError: the public key is not RSA or EC.
    """
    public_key = serialization.load_der_public_key(public_key_der)
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise UnsupportedKeyError(f"cannot certify a {type(public_key).__name__}")
    issuer_key = serialization.load_pem_private_key(pki.intermediate_key.read_bytes(), None)
    if not isinstance(issuer_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise UnsupportedKeyError("the intermediate CA key is neither RSA nor EC")
    intermediate = x509.load_pem_x509_certificate(pki.intermediate_cert.read_bytes())
    signer = _certificate(
        subject=_name(common_name, organization),
        subject_key=issuer_key,
        issuer=intermediate.subject,
        issuer_key=issuer_key,
        issuer_public_key=issuer_key.public_key(),
        now=dt.datetime.now(dt.UTC).replace(microsecond=0),
        validity=_SIGNER_VALIDITY,
        ca_path_length=None,
        is_ca=False,
        public_key=public_key,
        revocation_url=pki.revocation_url,
    )
    return _pem(signer) + _pem(intermediate)
