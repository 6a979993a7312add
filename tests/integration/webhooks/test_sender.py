"""The sender posts only over verified TLS: a receiver whose certificate chains to no trusted
root gets nothing, one trusted through ``METERAI_WEBHOOK_CA_FILE`` gets a request the example
verifier accepts, and plain http is refused before any connection unless allowed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meterai_webhooks.config import WebhookSettings
from meterai_webhooks.sender import Sender
from meterai_webhooks.signatures import new_secret
from tests.support.webhook_receiver import Receiver, serving_receiver

BODY = b'{"data":{"job_id":"j-1"},"timestamp":"2026-12-02T09:00:00Z","type":"job.done"}'


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with serving_receiver(tmp_path_factory.mktemp("sender-receiver"), hook="ok") as started:
        yield started


def _post(settings: WebhookSettings, url: str, secret: str) -> tuple[int, str]:
    sender = Sender(settings)
    try:
        answer = sender.post(url, "msg_test", BODY, (secret,), datetime.now(UTC))
    finally:
        sender.close()
    return answer.status, answer.error


def test_a_receiver_with_an_untrusted_certificate_gets_nothing(receiver: Receiver) -> None:
    before = len(receiver.requests())
    status, error = _post(WebhookSettings(timeout_s=5), receiver.url("/hook"), new_secret())
    assert status == 0 and "CERTIFICATE_VERIFY_FAILED" in error
    assert len(receiver.requests()) == before


def test_a_receiver_trusted_through_the_ca_file_gets_a_request_that_verifies(
    receiver: Receiver,
) -> None:
    secret = new_secret()
    receiver.trust(secret)
    settings = WebhookSettings(timeout_s=5, ca_file=Path(receiver.directory / "tls" / "ca.crt"))
    assert _post(settings, receiver.url("/hook"), secret) == (200, "")
    last = receiver.requests()[-1]
    assert last["valid"] and last["headers"]["webhook-id"] == "msg_test"
    assert last["body"].encode() == BODY


def test_plain_http_is_refused_before_connecting_unless_allowed(receiver: Receiver) -> None:
    before = len(receiver.requests())
    status, error = _post(
        WebhookSettings(timeout_s=5), f"http://127.0.0.1:{receiver.port}/hook", new_secret()
    )
    assert status == 0 and "https://" in error
    status, error = _post(
        WebhookSettings(timeout_s=5, allow_http=True),
        f"http://127.0.0.1:{receiver.port}/hook",
        new_secret(),
    )
    assert status == 0 and error, "allowed, but this receiver speaks only TLS"
    assert len(receiver.requests()) == before
