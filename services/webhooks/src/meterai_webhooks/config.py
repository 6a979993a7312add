"""Webhook settings, read once from the environment (the webhook section of the platform's
configuration; :mod:`meterai_common.config` holds the rest)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meterai_common.config import ConfigError

__all__ = ["WebhookSettings"]


@dataclass(frozen=True)
class WebhookSettings:
    """How the dispatcher delivers events; defaults suit production, tests shorten them."""

    retry_base_s: float = 5.0
    """``METERAI_WEBHOOK_RETRY_BASE_S``: the wait after the first failed attempt."""
    retry_cap_s: float = 3600.0
    """``METERAI_WEBHOOK_RETRY_CAP_S``: no wait between two attempts is longer."""
    max_attempts: int = 12
    """``METERAI_WEBHOOK_MAX_ATTEMPTS``: after this many failures a delivery is DEAD."""
    timeout_s: float = 10.0
    """``METERAI_WEBHOOK_TIMEOUT_S``: connect and read bound of one attempt."""
    ca_file: Path | None = None
    """``METERAI_WEBHOOK_CA_FILE``: trust these roots for receivers instead of the system's."""
    allow_http: bool = False
    """``METERAI_WEBHOOK_ALLOW_HTTP=1``: accept plain ``http://`` endpoints (development)."""
    poll_s: float = 0.5
    """``METERAI_WEBHOOK_POLL_S``: how often the delivery loop looks for due deliveries when
    nothing woke it (a new event wakes it at once in the same process)."""
    concurrency: int = 8
    """``METERAI_WEBHOOK_CONCURRENCY``: attempts in flight at once (one per job at most)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if environ is None else environ
        allow = env.get("METERAI_WEBHOOK_ALLOW_HTTP", "")
        if allow not in ("", "0", "1"):
            raise ConfigError(f"METERAI_WEBHOOK_ALLOW_HTTP must be 1 or 0, not {allow!r}")
        ca = env.get("METERAI_WEBHOOK_CA_FILE") or None
        settings = cls(
            retry_base_s=_number(env, "METERAI_WEBHOOK_RETRY_BASE_S", cls.retry_base_s),
            retry_cap_s=_number(env, "METERAI_WEBHOOK_RETRY_CAP_S", cls.retry_cap_s),
            max_attempts=int(_number(env, "METERAI_WEBHOOK_MAX_ATTEMPTS", cls.max_attempts)),
            timeout_s=_number(env, "METERAI_WEBHOOK_TIMEOUT_S", cls.timeout_s),
            ca_file=Path(ca) if ca else None,
            allow_http=allow == "1",
            poll_s=_number(env, "METERAI_WEBHOOK_POLL_S", cls.poll_s),
            concurrency=int(_number(env, "METERAI_WEBHOOK_CONCURRENCY", cls.concurrency)),
        )
        if settings.ca_file is not None and not settings.ca_file.is_file():
            raise ConfigError(f"METERAI_WEBHOOK_CA_FILE {settings.ca_file} is not a file")
        if settings.max_attempts < 1 or settings.concurrency < 1:
            raise ConfigError("METERAI_WEBHOOK_MAX_ATTEMPTS and _CONCURRENCY must be at least 1")
        return settings


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {raw!r}")
    return value
