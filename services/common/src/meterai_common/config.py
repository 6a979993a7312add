"""Settings of every meterai process, read once from the environment.

One frozen :class:`Settings` serves all services so that the embedded platform (``meterai up``)
and the distributed one (``meterai serve ...``) are configured by the same names. Nothing else in
the code base reads ``os.environ``: entry points call :meth:`Settings.from_env` and pass the
result down.

Defaults are the embedded ones: state under ``$METERAI_HOME`` (``./.meterai``), SQLite, no
broker (an in-process bus), gRPC on 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from meterai_common.tls import ClientTls, ServerTls, TlsFiles

__all__ = ["ConfigError", "Ports", "Settings"]


class ConfigError(ValueError):
    """An environment variable holds a value the platform cannot run with."""


@dataclass(frozen=True)
class Ports:
    """gRPC ports of the four services; 0 asks the OS for a free one (tests)."""

    quota: int = 50051
    stamping: int = 50052
    signing: int = 50053
    verify: int = 50054
    quota_mtls: int = 50055
    """Quota for resellers who authenticate with a client certificate instead of a key."""
    stamping_mtls: int = 50056
    """Stamping for resellers who authenticate with a client certificate."""
    web: int = 8443
    """The public verification site (HTTPS)."""

    @classmethod
    def from_base(cls, base: int) -> Ports:
        """The layout ``--server HOST:BASE`` means: quota at BASE, then stamping, signing,
        verify, and the two client-certificate ports."""
        return cls(base, base + 1, base + 2, base + 3, base + 4, base + 5)


@dataclass(frozen=True)
class Settings:
    """Everything a meterai process needs to know about its surroundings."""

    home: Path
    """Local state of the embedded platform: database, documents, test PKI, credentials."""
    database_url: str
    """SQLAlchemy URL; SQLite file under ``home`` unless ``DATABASE_URL`` is set."""
    amqp_url: str | None
    """RabbitMQ URL, or the URLs of a cluster's nodes separated by ``;`` (every client gets
    all of them and fails over); ``None`` runs messaging in-process (embedded platform only)."""
    documents: str
    """Document store: a directory reachable by every stamping process (shared volume), or
    ``database`` to keep documents in the platform's database (hosts without a shared volume)."""
    bind_host: str = "127.0.0.1"
    """Interface the gRPC servers listen on."""
    ports: Ports = field(default_factory=Ports)
    server_host: str = "127.0.0.1"
    """Host clients connect to (``--server`` / ``METERAI_SERVER``)."""
    signing_addr: str | None = None
    """Where the stamping service reaches the signing service; defaults to server_host:port."""
    signing_key: Path | None = None
    """PEM private key of the signer; only the signing service reads it."""
    signing_chain: Path | None = None
    """PEM bundle: signer certificate first, then its issuers."""
    pkcs11_module: str | None = None
    """PKCS#11 module of the token holding the platform key; ``None`` keeps the key in memory
    (read from ``signing_key``)."""
    pkcs11_token: str | None = None
    """Label of that token."""
    pkcs11_key_label: str = "meterai-signer"
    """Label of the key pair inside the token."""
    pkcs11_pin: str | None = field(default=None, repr=False)
    """User PIN of the token (``METERAI_PKCS11_PIN_FILE`` keeps it out of the environment)."""
    tsa_url: str | None = None
    """RFC 3161 timestamp authority; set, every signature is timestamped (PAdES B-T)."""
    tsa_username: str | None = None
    tsa_password: str | None = field(default=None, repr=False)
    """HTTP Basic credentials for the authority, if it wants them."""
    tsa_timeout_ms: int = 5000
    """Per-request bound on the authority's answer; slower counts as unavailable."""
    tsa_token_bound: int = 0
    """Largest timestamp token, bytes; 0 measures it from the authority at start."""
    signature_level: str = ""
    """PAdES level of every seal: ``B-B``, ``B-T`` (needs ``tsa_url``), ``B-LT`` (adds the
    chains and revocation data to the DSS) or ``B-LTA`` (and a document timestamp); empty
    follows ``tsa_url`` (B-T with it, B-B without)."""
    revocation_timeout_ms: int = 5000
    """Per-request bound on each OCSP or CRL answer fetched for B-LT; slower counts as down."""
    audit_checkpoint_every: int = 100
    """Audit events between two checkpoints signed by the platform key."""
    trust_roots: Path | None = None
    """PEM file of root certificates the verification service trusts."""
    verify_base_url: str = "https://verify.meterai.local/v"
    """The QR on every seal encodes ``<verify_base_url>/<serial>``."""
    verify_base_url_configured: bool = False
    """``METERAI_VERIFY_BASE_URL`` was set; otherwise ``meterai up`` points QRs at its site."""
    payment_provider: str | None = None
    """``gateway`` waits for ConfirmPayment from the payment gateway or an operator; ``dev``
    confirms orders at once. Unset: ``meterai up`` uses ``dev``, and a quota service run on its
    own refuses to start."""
    max_document_bytes: int = 20 * 1024 * 1024
    max_document_pages: int = 2000
    signing_workers: int = 2
    """Threads signing in-process when there is no broker (embedded platform)."""
    backlog_high_water: int = 20_000
    """Documents waiting for signing above which new submissions are refused with pushback."""
    backlog_max_wait_ms: int = 0
    """When set, also refuse once the backlog is more than this much work at the rate the
    platform has been finishing documents: a bound on how long an accepted document waits,
    whatever the platform's size today. 0: only the high-water mark applies."""
    reseller_rate_per_s: float = 200.0
    """Submissions per second one reseller may make (token bucket, per stamping process)."""
    reseller_burst: int = 400
    reseller_max_inflight: int = 5_000
    """Documents one reseller may have waiting for signing: the fairness cap."""
    insecure: bool = False
    """Serve and call gRPC in plaintext. Only ``METERAI_INSECURE=1`` / ``--insecure`` sets
    it, for a development machine; every server then says so loudly at start-up."""
    tls_dir_override: Path | None = None
    """Where the platform CA and certificates are (``METERAI_TLS_DIR``); ``home/tls``."""
    tls_hosts: tuple[str, ...] = ()
    """Extra names and addresses put in the service certificates ``init-pki`` creates
    (``METERAI_TLS_HOSTS``, comma-separated: the k8s Service names, a public host name)."""
    finishers: int = 4
    """Threads of the stamping service that finish signed documents (embed the signature,
    commit the stamp). 0 leaves finishing, and publishing the outbox, to ``meterai worker
    finishing`` processes, so the process answering resellers does nothing else."""

    @property
    def embedded(self) -> bool:
        """True when no broker is configured and messaging runs inside one process."""
        return self.amqp_url is None

    @property
    def pki_dir(self) -> Path:
        return self.home / "pki"

    @property
    def tls_dir(self) -> Path:
        return self.tls_dir_override or self.home / "tls"

    @property
    def tls_files(self) -> TlsFiles:
        return TlsFiles(self.tls_dir)

    def server_tls(
        self, identity: str, *, require_client_certificate: bool = False
    ) -> ServerTls | None:
        """The TLS a server of ``identity`` serves with; None in insecure mode only."""
        if self.insecure:
            return None
        return self.tls_files.server(
            identity, require_client_certificate=require_client_certificate
        )

    def client_tls(self, identity: str | None = None) -> ClientTls | None:
        """The TLS a client uses (as the platform ``identity`` for mTLS); None if insecure."""
        if self.insecure:
            return None
        return self.tls_files.client(identity)

    def address(self, service: str) -> str:
        """``host:port`` where clients reach ``service`` (quota, stamping, signing, verify)."""
        if service == "signing" and self.signing_addr:
            return self.signing_addr
        return f"{self.server_host}:{getattr(self.ports, service)}"

    def with_ports(self, ports: Ports) -> Settings:
        return replace(self, ports=ports)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, home: Path | None = None
    ) -> Settings:
        """Build settings from ``environ`` (``os.environ`` by default); fail fast on bad values.

        :param home: overrides ``METERAI_HOME`` (the CLI's ``--home``).
        """
        env = os.environ if environ is None else environ
        home = (home or Path(env.get("METERAI_HOME", ".meterai"))).absolute()
        database_url = _with_password(
            env.get("DATABASE_URL") or f"sqlite:///{home / 'meterai.db'}",
            env,
            "DATABASE_PASSWORD_FILE",
        )
        ports = Ports(
            quota=_int(env, "QUOTA_PORT", Ports.quota),
            stamping=_int(env, "STAMPING_PORT", Ports.stamping),
            signing=_int(env, "SIGNING_PORT", Ports.signing),
            verify=_int(env, "VERIFY_PORT", Ports.verify),
            quota_mtls=_int(env, "QUOTA_MTLS_PORT", Ports.quota_mtls),
            stamping_mtls=_int(env, "STAMPING_MTLS_PORT", Ports.stamping_mtls),
            web=_int(env, "WEB_PORT", Ports.web),
        )
        insecure = env.get("METERAI_INSECURE", "")
        if insecure not in ("", "0", "1"):
            raise ConfigError(f"METERAI_INSECURE must be 1 (plaintext) or 0, not {insecure!r}")
        provider = env.get("METERAI_PAYMENT_PROVIDER") or None
        if provider not in (None, "dev", "gateway"):
            raise ConfigError(
                f"METERAI_PAYMENT_PROVIDER must be 'dev' or 'gateway', not {provider!r}"
            )
        base_url = env.get("METERAI_VERIFY_BASE_URL", cls.verify_base_url).rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(f"METERAI_VERIFY_BASE_URL must be an http(s) URL, not {base_url!r}")
        pkcs11_module = env.get("METERAI_PKCS11_MODULE") or None
        pkcs11_token = env.get("METERAI_PKCS11_TOKEN") or None
        pkcs11_pin = _secret(env, "METERAI_PKCS11_PIN")
        if pkcs11_module is not None and (pkcs11_token is None or pkcs11_pin is None):
            raise ConfigError(
                "METERAI_PKCS11_MODULE needs METERAI_PKCS11_TOKEN and the token's user PIN "
                "(METERAI_PKCS11_PIN_FILE or METERAI_PKCS11_PIN)"
            )
        tsa_url = env.get("METERAI_TSA_URL") or None
        if tsa_url is not None and not tsa_url.startswith(("https://", "http://")):
            raise ConfigError(f"METERAI_TSA_URL must be an http(s) URL, not {tsa_url!r}")
        level = env.get("METERAI_SIGNATURE_LEVEL", "").upper()
        if level not in ("", "B-B", "B-T", "B-LT", "B-LTA"):
            raise ConfigError(
                f"METERAI_SIGNATURE_LEVEL must be B-B, B-T, B-LT or B-LTA, not {level!r}"
            )
        if level == "B-B" and tsa_url is not None:
            raise ConfigError("METERAI_SIGNATURE_LEVEL=B-B contradicts METERAI_TSA_URL")
        if level not in ("", "B-B") and tsa_url is None:
            raise ConfigError(
                f"METERAI_SIGNATURE_LEVEL={level} needs a timestamp authority (METERAI_TSA_URL)"
            )
        return cls(
            home=home,
            database_url=database_url,
            amqp_url=_amqp_url(env),
            documents=_documents(env.get("METERAI_DOCUMENTS"), home),
            bind_host=env.get("GRPC_HOST", "127.0.0.1"),
            ports=ports,
            server_host=env.get("METERAI_SERVER", "127.0.0.1"),
            signing_addr=env.get("SIGNING_ADDR") or None,
            signing_key=_path(env, "METERAI_SIGNING_KEY"),
            signing_chain=_path(env, "METERAI_SIGNING_CHAIN"),
            trust_roots=_path(env, "METERAI_TRUST_ROOTS"),
            verify_base_url=base_url,
            verify_base_url_configured=bool(env.get("METERAI_VERIFY_BASE_URL")),
            payment_provider=provider,
            max_document_bytes=_int(env, "METERAI_MAX_DOCUMENT_BYTES", cls.max_document_bytes),
            max_document_pages=_int(env, "METERAI_MAX_DOCUMENT_PAGES", cls.max_document_pages),
            signing_workers=_int(env, "METERAI_SIGNING_THREADS", cls.signing_workers),
            backlog_high_water=_int(env, "METERAI_BACKLOG_HIGH_WATER", cls.backlog_high_water),
            backlog_max_wait_ms=_int(env, "METERAI_BACKLOG_MAX_WAIT_MS", cls.backlog_max_wait_ms),
            reseller_rate_per_s=float(
                _int(env, "METERAI_RESELLER_RATE", int(cls.reseller_rate_per_s))
            ),
            reseller_burst=_int(env, "METERAI_RESELLER_BURST", cls.reseller_burst),
            reseller_max_inflight=_int(
                env, "METERAI_RESELLER_MAX_INFLIGHT", cls.reseller_max_inflight
            ),
            finishers=_int(env, "METERAI_STAMPING_FINISHERS", cls.finishers),
            insecure=insecure == "1",
            tls_dir_override=_path(env, "METERAI_TLS_DIR"),
            tls_hosts=tuple(
                h.strip() for h in env.get("METERAI_TLS_HOSTS", "").split(",") if h.strip()
            ),
            pkcs11_module=pkcs11_module,
            pkcs11_token=pkcs11_token,
            pkcs11_key_label=env.get("METERAI_PKCS11_KEY_LABEL") or cls.pkcs11_key_label,
            pkcs11_pin=pkcs11_pin,
            tsa_url=tsa_url,
            tsa_username=env.get("METERAI_TSA_USERNAME") or None,
            tsa_password=_secret(env, "METERAI_TSA_PASSWORD"),
            tsa_timeout_ms=_int(env, "METERAI_TSA_TIMEOUT_MS", cls.tsa_timeout_ms) or 1,
            tsa_token_bound=_int(env, "METERAI_TSA_TOKEN_BOUND", cls.tsa_token_bound),
            signature_level=level,
            revocation_timeout_ms=_int(
                env, "METERAI_REVOCATION_TIMEOUT_MS", cls.revocation_timeout_ms
            )
            or 1,
            audit_checkpoint_every=max(
                1, _int(env, "METERAI_AUDIT_CHECKPOINT_EVERY", cls.audit_checkpoint_every)
            ),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def _documents(raw: str | None, home: Path) -> str:
    if raw == "database":
        return raw
    return str(Path(raw or home / "documents").absolute())


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """``<name>_FILE`` (a file holding the secret, first line) or else ``<name>`` itself."""
    file_name = env.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ConfigError(f"{name}_FILE={file_name!r} cannot be read: {exc}") from None
    return env.get(name) or None


def _amqp_url(env: Mapping[str, str]) -> str | None:
    """``AMQP_URL``, each of its ``;``-separated node addresses with the password file's
    password; None when unset (in-process messaging)."""
    raw = env.get("AMQP_URL", "")
    addresses = [part.strip() for part in raw.split(";") if part.strip()]
    if not addresses:
        return None
    return ";".join(_with_password(part, env, "AMQP_PASSWORD_FILE") for part in addresses)


def _with_password(url: str, env: Mapping[str, str], file_variable: str) -> str:
    """``url`` with the password read from the file ``env[file_variable]`` names, if set.

    Deployments mount each service's broker and database password as a read-only secret file
    and keep the URL without it, so the password is neither in the environment (``docker
    inspect``, ``/proc/PID/environ``) nor in any log line that prints a URL.
    """
    file_name = env.get(file_variable)
    if not file_name:
        return url
    try:
        password = Path(file_name).read_text().splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise ConfigError(f"{file_variable}={file_name!r} cannot be read: {exc}") from None
    parts = urlsplit(url)
    if not parts.username:
        raise ConfigError(
            f"{file_variable} is set but the URL names no user: write it as "
            "scheme://USER@host/... and the password goes in the file"
        )
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(unquote(parts.username), safe='')}:{quote(password, safe='')}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw).absolute() if raw else None
