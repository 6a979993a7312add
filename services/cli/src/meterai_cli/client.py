"""How the command line finds and calls the platform.

Addresses come from ``--server``/``METERAI_SERVER`` or, for the embedded platform, from
``$METERAI_HOME/platform.json`` that ``meterai up`` writes; the API key from
``--api-key``/``METERAI_API_KEY`` or ``$METERAI_HOME/credentials.json``. Every call has a
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

__all__ = ["Platform", "PlatformFiles", "credentials_path", "platform_path"]

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

    def write(self, host: str, ports: Ports) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        data = {"host": host, "ports": ports.__dict__, "pid": os.getpid()}
        platform_path(self.home).write_text(json.dumps(data, indent=2))

    def remove(self) -> None:
        platform_path(self.home).unlink(missing_ok=True)


@dataclass
class Platform:
    """A client's view of the platform: where each service is and who we are."""

    host: str
    ports: Ports
    api_key: str | None
    timeout_s: float = 30.0
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)

    @classmethod
    def discover(
        cls, home: Path, server: str | None, api_key: str | None, timeout_s: float = 30.0
    ) -> Platform:
        ports = Ports()
        host = "127.0.0.1"
        local = platform_path(home)
        if local.exists():
            data = json.loads(local.read_text())
            host = data.get("host", host)
            ports = Ports(**data.get("ports", {}))
        if server:
            host, _, port = server.partition(":")
            if port:
                base = int(port)
                ports = Ports(base, base + 1, base + 2, base + 3)
        if api_key is None and credentials_path(home).exists():
            api_key = json.loads(credentials_path(home).read_text()).get("api_key")
        return cls(host, ports, api_key, timeout_s)

    def address(self, service: str) -> str:
        return f"{self.host}:{getattr(self.ports, service)}"

    def channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.insecure_channel(
                self.address(service),
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
