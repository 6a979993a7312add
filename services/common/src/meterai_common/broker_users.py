"""One RabbitMQ user per platform process kind, each allowed only what that kind does.

RabbitMQ checks three permissions per virtual host, each a regular expression over resource
names: *configure* (declare, delete), *write* (publish to an exchange, bind a queue) and *read*
(consume from a queue), plus *topic permissions* over the routing keys a user may publish to a
topic exchange. We use all four so that a stolen credential is worth little:

* **No service may configure anything.** The topology (exchanges, queues, bindings) is the
  operator's: imported from ``deploy/rabbitmq/definitions.json`` when the broker starts, or
  declared by the ``admin`` user. A service that finds it missing says so and stops; it cannot
  delete or redeclare a queue, so holding its password does not let anyone drop the signing
  backlog.
* **Events are signed for by their routing key.** Only ``signing`` may publish ``DigestSigned``
  and ``SigningFailed``, so a stamping, finishing or quota credential cannot inject a forged
  answer; only the stamping tier may publish ``DocumentStamped`` and put tasks on ``signing``;
  only ``quota`` announces ``QuotaCredited``.
* **Each queue has one reader kind.** Signing workers read ``signing``; the stamping tier reads
  ``stamping.events`` and the dead letters; the webhook dispatcher reads ``webhooks.events``
  and nothing else, and writes nothing: a stolen dispatcher credential can neither publish an
  event nor take another reader's messages.

``verify`` and the signing gRPC service use no broker at all and get no user. This module is
pure data plus the hash RabbitMQ stores; ``meterai admin topology --users`` writes it out.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meterai_common.messaging import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTERS_QUEUE,
    EVENTS_EXCHANGE,
    SIGNING_QUEUE,
    STAMPING_EVENTS,
    WEBHOOK_EVENTS,
)

__all__ = ["GRANTS", "BrokerGrant", "password_hash", "user_definitions"]

NOTHING = "^$"
"""Matches no resource name: RabbitMQ's way to deny a permission."""


def _only(*names: str) -> str:
    return "^(" + "|".join(re.escape(name) for name in names) + ")$"


@dataclass(frozen=True)
class BrokerGrant:
    """What one process kind may do on the platform's virtual host."""

    service: str
    configure: str
    write: str
    read: str
    publishes: tuple[str, ...] = ()
    """Routing keys this kind may publish on the events exchange (topic permission)."""
    tags: tuple[str, ...] = ()

    @property
    def topic_write(self) -> str:
        return _only(*self.publishes) if self.publishes else NOTHING


_PRIVATE_QUEUES = r"amq\.gen-.*"
"""Server-named, exclusive queues: a stamping process's own copy of announcements (job ended)
that wake its ``WatchJob`` streams. Exclusive, so no other connection can read or delete one."""

_STAMPING_TIER = {
    "configure": f"^{_PRIVATE_QUEUES}$",
    # Events out, sign tasks out (Celery publishes to the direct exchange named like its queue);
    # its private queues bound to the events exchange.
    "write": "^("
    + "|".join((re.escape(EVENTS_EXCHANGE), re.escape(SIGNING_QUEUE), _PRIVATE_QUEUES))
    + ")$",
    # The signing tier's answers in, the dead letters it refunds, announcements it watches.
    "read": "^("
    + "|".join(
        (
            re.escape(STAMPING_EVENTS.name),
            re.escape(DEAD_LETTERS_QUEUE),
            re.escape(EVENTS_EXCHANGE),
            _PRIVATE_QUEUES,
        )
    )
    + ")$",
    "publishes": ("DocumentStamped", "StampFailed"),
}

_EVERYTHING = _only(
    EVENTS_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTERS_QUEUE,
    SIGNING_QUEUE,
    STAMPING_EVENTS.name,
    WEBHOOK_EVENTS.name,
)
"""The platform's own exchanges and queues, and nothing else on the virtual host."""

GRANTS: Mapping[str, BrokerGrant] = {
    grant.service: grant
    for grant in (
        BrokerGrant(
            "quota",
            configure=NOTHING,
            write=_only(EVENTS_EXCHANGE),
            read=NOTHING,
            publishes=("QuotaCredited",),
        ),
        BrokerGrant("stamping", **_STAMPING_TIER),  # type: ignore[arg-type]
        BrokerGrant("finishing", **_STAMPING_TIER),  # type: ignore[arg-type]
        BrokerGrant(
            "signing",
            # Configures nothing: its Celery consumer runs without native delayed delivery
            # (``meterai_signing/worker_consumer.py``), whose ``celery_delayed_*`` exchanges
            # and queues were the one thing a service declared. A retry with backoff waits in
            # the worker and goes back through the ``signing`` exchange.
            configure=NOTHING,
            write="^(" + re.escape(EVENTS_EXCHANGE) + "|" + re.escape(SIGNING_QUEUE) + ")$",
            read=_only(SIGNING_QUEUE),
            publishes=("DigestSigned", "SigningFailed", "SigningAnswers"),
        ),
        BrokerGrant(
            # The webhook dispatcher (``meterai worker webhooks``): consumes its own copy of
            # the "job ended" announcements; pushing them to resellers is HTTPS, not AMQP.
            "webhooks",
            configure=NOTHING,
            write=NOTHING,
            read=_only(WEBHOOK_EVENTS.name),
        ),
        BrokerGrant(
            # KEDA's queue-length scaler: passive declarations only, which need no permission.
            "keda",
            configure=NOTHING,
            write=NOTHING,
            read=NOTHING,
        ),
        BrokerGrant(
            # The operator: declares the topology and reads queue depths. It publishes no
            # event: even the operator's credential cannot answer for the signing tier.
            "admin",
            configure=_EVERYTHING,
            write=_EVERYTHING,
            read=_EVERYTHING,
        ),
    )
}


def password_hash(password: str, salt: bytes | None = None) -> str:
    """The hash RabbitMQ keeps (``rabbit_password_hashing_sha256``): base64(salt ‖ SHA-256(salt ‖
    password)) with a 4-byte random salt, so definitions never carry a password in clear."""
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def user_definitions(
    passwords: Mapping[str, str] | None = None, *, vhost: str = "/", prefix: str = "meterai-"
) -> dict[str, Any]:
    """The ``users``, ``permissions`` and ``topic_permissions`` sections of a definitions file.

    :param passwords: service → password; a service without one gets an empty hash (no password
        login) and its password is set later with ``rabbitmqctl change_password``.
    :param prefix: user names are ``prefix + service`` (tests use a unique prefix).
    """
    passwords = passwords or {}
    users, permissions, topics = [], [], []
    for service, grant in GRANTS.items():
        name = prefix + service
        secret = passwords.get(service)
        users.append(
            {
                "name": name,
                "password_hash": password_hash(secret) if secret else "",
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": list(grant.tags),
                "limits": {},
            }
        )
        permissions.append(
            {
                "user": name,
                "vhost": vhost,
                "configure": grant.configure,
                "write": grant.write,
                "read": grant.read,
            }
        )
        topics.append(
            {
                "user": name,
                "vhost": vhost,
                "exchange": EVENTS_EXCHANGE,
                "write": grant.topic_write,
                "read": ".*",
            }
        )
    return {"users": users, "permissions": permissions, "topic_permissions": topics}
