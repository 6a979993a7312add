"""Wires the quota service, and creates the principals the platform starts with."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai_common.auth import Authenticator
from meterai_common.config import Settings
from meterai_common.db import reading, run_in_transaction
from meterai_common.grpc_server import RunningServer, create_server
from meterai_common.outbox import OutboxRelay
from meterai_common.runtime import Periodic, Transport

from .api_keys import authenticate, issue_api_key
from .client_certificates import authenticate_certificate
from .domain.model import Principal, Role
from .domain.payments import PaymentProvider
from .grpc_api import QuotaServicer
from .holds import reap_expired_holds
from .orders import expire_orders
from .resellers import create_reseller

__all__ = [
    "QuotaRuntime",
    "ServiceEntry",
    "create_principal",
    "ensure_demo_reseller",
    "start_quota",
]

ServiceEntry = tuple[Callable[[Any, Any], None], Any, str]
"""``(add_XServicer_to_server, servicer, service full name)``."""

log = logging.getLogger(__name__)

SERVICE_NAME = quota_pb2.DESCRIPTOR.services_by_name["QuotaService"].full_name
HOLD_TTL = timedelta(hours=6)
"""Safety net only: stamping fails and refunds its own stuck jobs long before this."""


@dataclass
class QuotaRuntime:
    server: RunningServer
    chores: Periodic
    relay: OutboxRelay

    def stop(self, grace: float = 10.0, drain_delay: float = 0.0) -> None:
        self.server.stop(grace, drain_delay)
        self.chores.stop()
        self.relay.stop()


def create_principal(
    conn: Connection,
    name: str,
    *,
    parent: str | None = None,
    operator: bool = False,
    unique_name: bool = False,
) -> tuple[str | None, str]:
    """Create a reseller (or an operator key) and return ``(reseller_id, api_key)``.

    :param unique_name: refuse a reseller name already in use (``create_reseller``).
    """
    if operator:
        return None, issue_api_key(conn, None, Role.OPERATOR)
    reseller = create_reseller(conn, name, parent_id=parent, unique_name=unique_name)
    return reseller.id, issue_api_key(conn, reseller.id, Role.RESELLER)


def ensure_demo_reseller(db: Engine, home: Path) -> None:
    """First start of the embedded platform: a demo reseller and operator whose keys the CLI
    on this machine finds in ``$METERAI_HOME/credentials.json`` (mode 0600)."""
    path = home / "credentials.json"
    if path.exists():
        return

    def work(conn: Connection) -> dict[str, str | None]:
        reseller_id, api_key = create_principal(conn, "Demo Reseller")
        _, operator_key = create_principal(conn, "operator", operator=True)
        return {"reseller_id": reseller_id, "api_key": api_key, "operator_key": operator_key}

    credentials = run_in_transaction(db, work)
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credentials, handle, indent=2)


def start_quota(
    settings: Settings,
    db: Engine,
    transport: Transport,
    payments: PaymentProvider,
    *,
    more_services: Callable[[Authenticator[Principal]], Sequence[ServiceEntry]] = lambda _: (),
) -> QuotaRuntime:
    """Start the quota service; ``payments`` comes from
    :func:`meterai_quota.adapters.payments.choose_payment_provider`, and is logged.

    :param more_services: other reseller-facing services served on the quota port with the
        same credentials (the webhook service), as ``(add_to_server, servicer, full name)``
        built from quota's authenticator.
    """
    log.warning("quota: payment provider %r in force: %s", payments.name, payments.description)

    def resolve(key: str) -> Principal:
        with reading(db) as conn:
            return authenticate(conn, key)

    def resolve_certificate(reseller_id: str, der: bytes) -> Principal:
        with reading(db) as conn:
            return authenticate_certificate(conn, reseller_id, der)

    # Only quota's own announcements: its broker user may publish nothing else.
    relay = OutboxRelay(db, transport.dispatch, names=("QuotaCredited",))
    relay.start()
    authenticator = Authenticator(resolve, resolve_certificate=resolve_certificate)
    extra = list(more_services(authenticator))
    servicer = QuotaServicer(
        db,
        authenticator,
        payments=payments,
        committed=relay.notify,
    )
    server = create_server(
        "quota",
        settings.bind_host,
        settings.ports.quota,
        [
            (quota_pb2_grpc.add_QuotaServiceServicer_to_server, servicer),
            *((add, more) for add, more, _ in extra),
        ],
        [SERVICE_NAME, *(name for _, _, name in extra)],
        tls=settings.server_tls("quota"),
        mtls_port=settings.ports.quota_mtls,
    )

    def expire() -> None:
        run_in_transaction(db, lambda conn: expire_orders(conn, datetime.now(UTC)))

    def reap() -> None:
        run_in_transaction(db, lambda conn: reap_expired_holds(conn, datetime.now(UTC), HOLD_TTL))

    chores = Periodic("quota-chores", 30.0, [expire, reap])
    chores.start()
    return QuotaRuntime(server, chores, relay)
