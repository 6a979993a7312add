"""Standard Webhooks signing: secrets, and the three headers every delivery carries.

The HMAC itself is the ``standardwebhooks`` package's (the reference implementation of the
Standard Webhooks specification): ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with
the secret's bytes (``whsec_<base64>``). During a rotation both secrets sign and the header
holds both signatures, space-separated, so a receiver with either secret accepts the event.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

__all__ = ["SECRET_PREFIX", "headers_for", "new_secret"]

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
"""256 bits: the HMAC-SHA256 key length; the spec asks for 24 to 64 bytes."""


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def headers_for(
    message_id: str, body: bytes, signing_secrets: Sequence[str], at: datetime | None = None
) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` of one attempt.

    :param signing_secrets: every secret that signs now (the current one first).
    :param at: the attempt's time; the timestamp is of the attempt, not of the event, so a
        receiver's tolerance window judges how fresh the request is, and a replay a day later
        is still accepted.
    """
    moment = at or datetime.now(UTC)
    text = body.decode()
    signatures = " ".join(
        Webhook(secret).sign(message_id, moment, text) for secret in signing_secrets
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
