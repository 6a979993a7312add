"""How the command line finds and calls the platform.

Addresses come from ``--server``/``METERAI_SERVER`` or, for the embedded platform, from
``$METERAI_HOME/platform.json`` that ``meterai up`` writes; the API key from
``--api-key``/``METERAI_API_KEY`` or ``$METERAI_HOME/credentials.json``. Calls use TLS and
trust the platform CA in ``$METERAI_HOME/tls/ca.crt`` (or ``--ca``); with ``--client-cert`` a
reseller authenticates by certificate on the services' client-certificate ports instead of by
key. Plaintext only with ``--insecure``. Every call has a
deadline, and the methods that carry an idempotency key are retried by gRPC itself on
UNAVAILABLE / RESOURCE_EXHAUSTED (honouring server pushback), so a retried submit never makes
a second job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from meterai_common.config import Ports
from meterai_common.tls import ClientTls, TlsFiles, secure_channel

__all__ = ["Platform", "PlatformFiles", "RunningPlatform", "credentials_path", "platform_path"]

_RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.2s",
    "maxBackoff": "5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
}
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": "meterai.stamping.v1.StampingService", "method": "SubmitDocument"},
                    {"service": "meterai.stamping.v1.StampingService", "method": "GetJob"},
                    {"service": "meterai.quota.v1.QuotaService", "method": "PurchaseQuota"},
                    {"service": "meterai.quota.v1.QuotaService", "method": "GetBalance"},
                    {"service": "meterai.verify.v1.VerificationService"},
                ],
                "retryPolicy": _RETRY_POLICY,
            }
        ],
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }
)
MAX_MESSAGE_BYTES = 25 * 1024 * 1024


def platform_path(home: Path) -> Path:
    return home / "platform.json"


def credentials_path(home: Path) -> Path:
    return home / "credentials.json"


@dataclass
class PlatformFiles:
    """What ``meterai up`` leaves for clients on the same machine."""

    home: Path

    def running(self) -> RunningPlatform | None:
        """The platform that wrote ``platform.json``, if its process is still alive."""
        try:
            data = json.loads(platform_path(self.home).read_text())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if pid == os.getpid() or not _alive(pid):
            return None
        return RunningPlatform(pid, data.get("host", "127.0.0.1"), Ports(**data.get("ports", {})))

    def write(
        self, host: str, ports: Ports, *, insecure: bool = False, metrics: str | None = None
    ) -> None:
        """:param metrics: the URL of the platform's Prometheus ``/metrics`` endpoint."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        data: dict[str, object] = {
            "host": host,
            "ports": ports.__dict__,
            "pid": os.getpid(),
            "insecure": insecure,
        }
        if metrics is not None:
            data["metrics"] = metrics
        fd = os.open(platform_path(self.home), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)

    def remove(self) -> None:
        """Delete ``platform.json`` if this process wrote it: a platform that failed to
        start must not erase the file of one that runs."""
        try:
            pid = json.loads(platform_path(self.home).read_text()).get("pid")
        except (OSError, ValueError, AttributeError):
            return
        if pid == os.getpid():
            platform_path(self.home).unlink(missing_ok=True)


@dataclass(frozen=True)
class RunningPlatform:
    pid: int
    host: str
    ports: Ports


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Platform:
    """A client's view of the platform: where each service is and who we are."""

    host: str
    ports: Ports
    api_key: str | None
    timeout_s: float = 30.0
    tls: ClientTls | None = None
    """Trust anchor (and client certificate) of every channel; None only with --insecure."""
    certificate_auth: bool = False
    """The reseller authenticates by client certificate: quota and stamping calls go to
    their client-certificate ports."""
    found_by: str = "the default ports"
    """Where the address came from, for messages when nothing answers there."""
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)

    @classmethod
    def discover(
        cls,
        home: Path,
        server: str | None,
        api_key: str | None,
        timeout_s: float = 30.0,
        *,
        insecure: bool = False,
        ca: Path | None = None,
        client_certificate: tuple[Path, Path] | None = None,
        tls_dir: Path | None = None,
    ) -> Platform:
        """
        :param ca: the platform CA to trust instead of ``$METERAI_HOME/tls/ca.crt``.
        :param client_certificate: ``(certificate, key)`` PEM files of a reseller certificate.
        """
        ports = Ports()
        host = "127.0.0.1"
        local = platform_path(home)
        found_by = f"the default ports (there is no {local}: no 'meterai up' runs for that home)"
        if local.exists():
            data = json.loads(local.read_text())
            host = data.get("host", host)
            ports = Ports(**data.get("ports", {}))
            found_by = str(local)
        if server:
            host, _, port = server.partition(":")
            found_by = "--server / METERAI_SERVER"
            if port:
                ports = Ports.from_base(int(port))
        if api_key is None and client_certificate is None and credentials_path(home).exists():
            api_key = json.loads(credentials_path(home).read_text()).get("api_key")
        tls = None if insecure else _client_tls(tls_dir or home / "tls", ca, client_certificate)
        return cls(
            host, ports, api_key, timeout_s, tls, client_certificate is not None, found_by=found_by
        )

    def address(self, service: str) -> str:
        if self.certificate_auth and service in ("quota", "stamping"):
            service = f"{service}_mtls"
        return f"{self.host}:{getattr(self.ports, service)}"

    def channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            self._channels[service] = secure_channel(
                self.address(service),
                self.tls,
                options=[
                    ("grpc.service_config", _SERVICE_CONFIG),
                    ("grpc.enable_retries", 1),
                    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ],
            )
        return self._channels[service]

    def metadata(self) -> Sequence[tuple[str, str]]:
        return (("x-api-key", self.api_key),) if self.api_key else ()

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()


def _client_tls(
    directory: Path, ca: Path | None, client_certificate: tuple[Path, Path] | None
) -> ClientTls:
    files = TlsFiles(directory)
    if ca is None and client_certificate is None:
        return files.client_if_present("admin")
    trusted = (
        (ca or files.ca_certificate).read_bytes() if (ca or files.ca_certificate).exists() else None
    )
    if trusted is None:
        raise FileNotFoundError(
            f"no platform CA at {files.ca_certificate}: pass --ca with the platform's ca.crt "
            "(or --insecure for a development platform started with --insecure)"
        )
    if client_certificate is None:
        return ClientTls(trusted)
    certificate, key = client_certificate
    return ClientTls(trusted, certificate.read_bytes(), key.read_bytes())
