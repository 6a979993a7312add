"""The per-service broker grants, read as a policy: who may publish, read and configure what."""

from __future__ import annotations

import base64
import hashlib
import re

from meterai_common.broker_users import GRANTS, password_hash, user_definitions
from meterai_common.messaging import DEAD_LETTERS_QUEUE, SIGNING_QUEUE, STAMPING_EVENTS


def _matches(pattern: str, name: str) -> bool:
    return re.fullmatch(pattern, name) is not None


def test_only_the_signing_tier_may_publish_signing_answers() -> None:
    for service, grant in GRANTS.items():
        for key in ("DigestSigned", "SigningFailed"):
            assert _matches(grant.topic_write, key) == (service == "signing"), service


def test_no_service_may_configure_the_platforms_queues() -> None:
    for service, grant in GRANTS.items():
        for queue in (SIGNING_QUEUE, STAMPING_EVENTS.name, DEAD_LETTERS_QUEUE):
            assert _matches(grant.configure, queue) == (service == "admin"), (service, queue)


def test_only_the_operator_and_the_stamping_tier_may_configure_anything() -> None:
    """The stamping tier declares its private, server-named announcement queues; the signing
    workers declare nothing (their consumer runs without Celery's native delayed delivery)."""
    configuring = {s for s, g in GRANTS.items() if g.configure != "^$"}
    assert configuring == {"admin", "stamping", "finishing"}, configuring
    for service in ("stamping", "finishing"):
        assert _matches(GRANTS[service].configure, "amq.gen-Xy12")
        assert not _matches(GRANTS[service].configure, "celery_delayed_0")


def test_each_queue_is_read_by_its_consumers_only() -> None:
    readers = {
        SIGNING_QUEUE: {"signing", "admin"},
        STAMPING_EVENTS.name: {"stamping", "finishing", "admin"},
        DEAD_LETTERS_QUEUE: {"stamping", "finishing", "admin"},
    }
    for queue, allowed in readers.items():
        assert {s for s, g in GRANTS.items() if _matches(g.read, queue)} == allowed, queue


def test_the_stored_hash_is_rabbitmqs_salted_sha256() -> None:
    stored = base64.b64decode(password_hash("guest", salt=b"\x90\x8d\xc6\x0a"))
    salt, digest = stored[:4], stored[4:]
    assert digest == hashlib.sha256(salt + b"guest").digest()
    assert password_hash("guest") != password_hash("guest")  # a fresh salt each time


def test_committed_definitions_carry_no_password() -> None:
    users = user_definitions()["users"]
    assert {user["name"] for user in users} == {f"meterai-{service}" for service in GRANTS}
    assert all(user["password_hash"] == "" for user in users)
