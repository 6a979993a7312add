"""Verify a meterai webhook before trusting it: signature and timestamp tolerance.

meterai signs every event the Standard Webhooks way: ``webhook-signature`` holds one or more
``v1,<base64 HMAC-SHA256>`` (space-separated; two while a secret is being rotated) over
``"<webhook-id>.<webhook-timestamp>.<raw body>"``, keyed with the bytes of the endpoint's
secret ``whsec_<base64>``. Check it on the raw bytes you received (before any JSON parsing),
refuse a timestamp outside your tolerance (a captured request replayed later is refused),
and deduplicate by ``webhook-id``: delivery is at least once, so the same event may come again.

Use it as a library (``verify(body, headers, secrets)``) or from the shell::

    python verify.py --secret whsec_... --headers headers.json body.json

The HMAC is the ``standardwebhooks`` package's (``pip install standardwebhooks``), the
specification's reference implementation; only the tolerance is ours, so you can choose it.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

__all__ = ["DEFAULT_TOLERANCE_S", "InvalidWebhook", "verify"]

DEFAULT_TOLERANCE_S = 300
"""Five minutes either way, the Standard Webhooks default."""


class InvalidWebhook(Exception):
    """The request is not a genuine, fresh meterai event: answer 400 and ignore it."""


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The event (``type``, ``timestamp``, ``data``) if ``body`` was signed by one of
    ``secrets`` within ``tolerance_s`` of ``now``; raises :class:`InvalidWebhook` otherwise.

    :param secrets: the endpoint's secret(s); pass the old and the new one while you rotate.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (message_id and stamp and signatures):
        raise InvalidWebhook("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(stamp)
    except ValueError:
        raise InvalidWebhook("webhook-timestamp is not a Unix time in seconds") from None
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        raise InvalidWebhook(
            f"webhook-timestamp is {current - sent:+.0f} s from now, outside ±{tolerance_s:.0f} s"
        )
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise InvalidWebhook("the body is not UTF-8") from None
    offered = []
    for item in signatures.split():
        version, _, value = item.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except ValueError:
            continue
    at = datetime.fromtimestamp(sent, UTC)
    for secret in secrets:
        expected = base64.b64decode(Webhook(secret).sign(message_id, at, text).split(",", 1)[1])
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            event: dict[str, Any] = json.loads(text)
            return event
    raise InvalidWebhook("no signature matches the endpoint's secret")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("body", type=Path, help="the raw request body, as received")
    parser.add_argument("--headers", type=Path, required=True, help="a JSON object of headers")
    parser.add_argument("--secret", action="append", required=True, help="whsec_… (repeatable)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE_S)
    args = parser.parse_args(argv)
    try:
        event = verify(
            args.body.read_bytes(),
            json.loads(args.headers.read_text()),
            args.secret,
            tolerance_s=args.tolerance,
        )
    except InvalidWebhook as error:
        print(f"rejected: {error}", file=sys.stderr)
        return 1
    print(json.dumps(event, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
