"""Transport security of every gRPC port: the platform CA, service certificates, credentials.

Every port serves TLS unless plaintext is asked for by name (``METERAI_INSECURE=1`` or
``--insecure``). The files live in one folder (``$METERAI_HOME/tls`` unless
``METERAI_TLS_DIR`` says otherwise):

* ``ca.crt`` — the platform CA that clients trust and that signs every certificate below;
  ``ca.key`` stays with whoever issues certificates (``meterai up``, ``meterai admin
  init-pki``), never with a serving process in a real deployment.
* ``<identity>.crt`` / ``<identity>.key`` — one certificate per platform identity
  (:data:`SERVICE_IDENTITIES`): a server certificate for the ports that identity serves, and a
  client certificate when it calls another service (mTLS).

Each certificate names its holder in a URI SAN (``spiffe://meterai/service/<identity>`` or
``spiffe://meterai/reseller/<reseller id>``), which is what servers authorise on: a reseller's
certificate, issued by the same CA, can never pass for a platform service.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "RESELLER_URI_PREFIX",
    "SERVICE_IDENTITIES",
    "SERVICE_URI_PREFIX",
    "ClientTls",
    "ServerTls",
    "TlsFiles",
    "TlsNotConfigured",
    "ensure_platform_tls",
    "issue_reseller_certificate",
    "peer_identity",
    "secure_channel",
]

log = logging.getLogger(__name__)

SERVICE_IDENTITIES = ("quota", "stamping", "signing", "verify", "web", "finishing", "admin")
"""Every platform identity that gets a certificate: the four gRPC services, the web site, the
finishing workers (which call signing for its chain) and the operator's command line."""
SERVICE_URI_PREFIX = "spiffe://meterai/service/"
RESELLER_URI_PREFIX = "spiffe://meterai/reseller/"
CA_VALIDITY = datetime.timedelta(days=3650)
CERTIFICATE_VALIDITY = datetime.timedelta(days=397)
"""Leaf lifetime: the longest browsers accept, and a yearly renewal operators can plan."""
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


class TlsNotConfigured(Exception):
    """TLS is on (the default) and a file it needs is missing: says how to create it."""


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meterai platform"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _private_write(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, created so from the start (no 0644 window)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _san(hosts: Iterable[str], uri: str) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)]
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the platform's TLS material in one folder."""

    directory: Path

    @property
    def ca_certificate(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    def certificate(self, identity: str) -> Path:
        return self.directory / f"{identity}.crt"

    def key(self, identity: str) -> Path:
        return self.directory / f"{identity}.key"

    def _need(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise TlsNotConfigured(
                f"TLS is on and {path} does not exist: create the platform's certificates with "
                "'meterai admin init-pki' (or mount them there; METERAI_TLS_DIR names the "
                "folder), or run without TLS only for development with METERAI_INSECURE=1"
            ) from None

    def server(self, identity: str, *, require_client_certificate: bool = False) -> ServerTls:
        """What a server of ``identity`` presents, and whom it asks for a certificate."""
        return ServerTls(
            certificate_chain=self._need(self.certificate(identity)),
            private_key=self._need(self.key(identity)),
            client_ca=self._need(self.ca_certificate),
            require_client_certificate=require_client_certificate,
        )

    def client(self, identity: str | None = None) -> ClientTls:
        """What a client trusts and, for a platform ``identity``, the certificate it shows."""
        ca = self._need(self.ca_certificate)
        if identity is None:
            return ClientTls(ca)
        return ClientTls(ca, self._need(self.certificate(identity)), self._need(self.key(identity)))

    def client_if_present(self, identity: str) -> ClientTls:
        """The identity's client certificate when this machine holds it, else trust only.

        The command line uses the operator's ``admin`` certificate where ``meterai up`` or
        ``init-pki`` left it, and works as a plain reseller client elsewhere.
        """
        if self.certificate(identity).exists() and os.access(self.key(identity), os.R_OK):
            return self.client(identity)
        return self.client()


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate and key (PEM), and the CA its clients' certificates chain to."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes
    require_client_certificate: bool = False

    def credentials(
        self, *, require_client_certificate: bool | None = None
    ) -> grpc.ServerCredentials:
        require = (
            self.require_client_certificate
            if require_client_certificate is None
            else require_client_certificate
        )
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca if require else None,
            require_client_auth=require,
        )


@dataclass(frozen=True)
class ClientTls:
    """A client's trust anchor and, for mTLS, its own certificate and key (PEM)."""

    ca: bytes
    certificate_chain: bytes | None = None
    private_key: bytes | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca, self.private_key, self.certificate_chain)


def secure_channel(
    target: str, tls: ClientTls | None, options: Sequence[tuple[str, object]] = ()
) -> grpc.Channel:
    """A channel to ``target``: TLS with ``tls``, plaintext only when ``tls`` is None (the
    caller was told ``--insecure``)."""
    if tls is None:
        return grpc.insecure_channel(target, options=list(options))
    return grpc.secure_channel(target, tls.credentials(), options=list(options))


def peer_identity(context: grpc.ServicerContext) -> str | None:
    """The URI SAN of the caller's verified client certificate, or None (no certificate).

    gRPC exposes it only after the handshake verified the chain to the platform CA, so a
    value here is the CA's word, not the client's.
    """
    values = context.auth_context().get("peer_spiffe_id") or context.auth_context().get(
        "x509_subject_alternative_name", []
    )
    for value in values:
        text = value.decode() if isinstance(value, bytes) else str(value)
        if text.startswith(("spiffe://meterai/",)):
            return text
    return None


def peer_certificate_der(context: grpc.ServicerContext) -> bytes | None:
    """The caller's verified client certificate (DER), or None."""
    pem = context.auth_context().get("x509_pem_cert")
    if not pem:
        return None
    return x509.load_pem_x509_certificate(pem[0]).public_bytes(serialization.Encoding.DER)


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    common_name: str,
    uri: str,
    hosts: Iterable[str],
    usages: Sequence[x509.ObjectIdentifier],
    now: datetime.datetime,
    validity: datetime.timedelta,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(_san(hosts, uri), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def _load_ca(files: TlsFiles) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca = x509.load_pem_x509_certificate(files.ca_certificate.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsNotConfigured(f"{files.ca_key} is not the platform CA's EC key")
    return key, ca


def ensure_platform_tls(
    directory: Path,
    hosts: Iterable[str] = (),
    *,
    now: datetime.datetime | None = None,
) -> TlsFiles:
    """Create the platform CA and a certificate per identity where they are missing.

    Existing files are kept, so running it again (every ``meterai up``) never changes a CA
    that clients already trust.

    :param hosts: names and addresses clients use to reach the services, besides
        :data:`DEFAULT_HOSTS` (``METERAI_TLS_HOSTS``; k8s Service names, say).
    """
    files = TlsFiles(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    now = now or datetime.datetime.now(datetime.UTC)
    if not files.ca_certificate.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("meterai platform CA"))
            .issuer_name(_name("meterai platform CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _private_write(files.ca_key, _pem_key(ca_key))
        _private_write(files.ca_certificate, _pem(ca))
        log.info("created the platform TLS CA in %s", directory)
    ca_key, ca = _load_ca(files)
    all_hosts = [*DEFAULT_HOSTS, *hosts]
    for identity in SERVICE_IDENTITIES:
        if files.certificate(identity).exists() and files.key(identity).exists():
            continue
        key, certificate = _issue(
            ca_key,
            ca,
            f"meterai {identity}",
            SERVICE_URI_PREFIX + identity,
            [*all_hosts, identity, f"meterai-{identity}"],
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            now,
            CERTIFICATE_VALIDITY,
        )
        _private_write(files.key(identity), _pem_key(key))
        _private_write(files.certificate(identity), _pem(certificate))
    return files


def issue_reseller_certificate(
    files: TlsFiles,
    reseller_id: str,
    *,
    now: datetime.datetime | None = None,
    validity: datetime.timedelta = CERTIFICATE_VALIDITY,
) -> tuple[bytes, bytes, bytes]:
    """A client certificate that authenticates as ``reseller_id`` and no other.

    :return: ``(certificate PEM, private key PEM, certificate DER)``; the DER is what the
        platform registers so the certificate can be revoked like an API key.
    """
    ca_key, ca = _load_ca(files)
    key, certificate = _issue(
        ca_key,
        ca,
        f"meterai reseller {reseller_id}",
        RESELLER_URI_PREFIX + reseller_id,
        [],
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        now or datetime.datetime.now(datetime.UTC),
        validity,
    )
    return (
        _pem(certificate),
        _pem_key(key),
        certificate.public_bytes(serialization.Encoding.DER),
    )
