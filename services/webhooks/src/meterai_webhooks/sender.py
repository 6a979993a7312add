"""Posts one signed attempt to a receiver over HTTPS, verifying the receiver's certificate.

The only module that speaks HTTP. ``httpx`` with TLS verification on (the system's roots, or
``METERAI_WEBHOOK_CA_FILE``'s instead), no redirects followed (a receiver that moved must
say so by being re-registered, not by pointing the platform's signed posts elsewhere), and
one time-out for connect and each read, so a slow receiver costs one worker at most that long.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from datetime import datetime

import certifi
import httpx

from .config import WebhookSettings
from .endpoints import check_url
from .errors import InvalidEndpoint
from .signatures import headers_for

__all__ = ["Answer", "Sender"]

USER_AGENT = "meterai-webhooks/1"


@dataclass(frozen=True)
class Answer:
    status: int
    """The receiver's HTTP status; 0 when none came."""
    error: str
    duration_ms: int


class Sender:
    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        # certifi's roots by default (httpx's own dependency), so a slim container without
        # the system's CA bundle still verifies public receivers.
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else certifi.where()
        )
        self._client = httpx.Client(
            verify=context,
            timeout=settings.timeout_s,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
        )

    def post(
        self, url: str, message_id: str, body: bytes, secrets: tuple[str, ...], at: datetime
    ) -> Answer:
        started = time.monotonic()
        try:
            check_url(url, allow_http=self._settings.allow_http)
        except InvalidEndpoint as error:
            return Answer(0, str(error), 0)
        headers = headers_for(message_id, body, secrets, at)
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return Answer(0, f"{type(error).__name__}: {error}", _ms(started))
        refused = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return Answer(response.status_code, refused, _ms(started))

    def close(self) -> None:
        self._client.close()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
