"""Process compositions: the embedded platform (``meterai up``) and one service per process
(``meterai serve NAME``). Both wire the same services; only the adapters differ."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine

from meterai_cli.client import PlatformFiles
from meterai_cli.user_config import remember_home
from meterai_common.allocator import keep_large_buffers, settle_garbage_collector
from meterai_common.bus import InProcessBus
from meterai_common.config import Ports, Settings
from meterai_common.db import create_engine, migrate
from meterai_common.grpc_server import wait_for_termination_signal
from meterai_common.metrics import MetricsServer, metrics_port, serve_metrics
from meterai_common.private_home import make_home_private
from meterai_common.runtime import BrokerTransport, InProcessTransport, Transport, stop_all
from meterai_common.tls import ensure_platform_tls
from meterai_quota.adapters.payments import choose_payment_provider
from meterai_quota.bootstrap import ServiceEntry, ensure_demo_reseller, start_quota
from meterai_signing.bootstrap import start_signing
from meterai_stamping.bootstrap import start_finishing, start_stamping
from meterai_verify.bootstrap import start_verify
from meterai_verify.memory_return import return_large_buffers
from meterai_verify.web.server import start_web
from meterai_webhooks.bootstrap import start_webhooks, webhook_service
from meterai_webhooks.config import WebhookSettings

__all__ = ["SERVICES", "PlatformAlreadyRunning", "run_embedded", "run_service"]

log = logging.getLogger(__name__)

SERVICES = ("quota", "stamping", "signing", "verify", "web")
GRACE_S = 10.0
"""In-flight calls get this long to finish after the server stops taking new ones; long-lived
streams (health and job watches) are cut at the end of it, and clients re-watch."""
DRAIN_DELAY_S = 2.0
"""After SIGTERM a service reports NOT_SERVING this long before refusing calls, so load
balancers polling the health service move traffic away first."""
STAMPING_SWITCH_INTERVAL_S = 0.001
"""The stamping process's GIL turn (Python's default is 5 ms), see :func:`run_service`."""


class PlatformAlreadyRunning(Exception):
    """``meterai up`` found a live platform using the same ``METERAI_HOME``."""


def run_embedded(settings: Settings, ready: Callable[[Ports], None]) -> None:
    """Run every service in this process on SQLite and an in-process bus until Ctrl-C.

    The process serves public verification uploads, so it gives large buffers back
    (:func:`~meterai_verify.memory_return.return_large_buffers`) rather than keeping them
    for stamping; ``meterai serve stamping`` keeps them.

    Refuses, before touching anything, when a live platform already uses this home: its
    ``platform.json``, database and credentials stay as they are.
    """
    files = PlatformFiles(settings.home)
    running = files.running()
    if running is not None:
        raise PlatformAlreadyRunning(
            f"meterai is already running for {settings.home} (process {running.pid}, quota "
            f"on {running.host}:{running.ports.quota}); it was left as it is. Use it, stop it "
            "first (Ctrl-C in its terminal), or start another with a different --home and "
            "other ports."
        )
    return_large_buffers()
    payments = choose_payment_provider(settings.payment_provider, default="dev")
    make_home_private(settings.home)
    if not settings.insecure:
        ensure_platform_tls(settings.tls_dir, settings.tls_hosts)
    db = create_engine(settings.database_url)
    migrate(db)
    ensure_demo_reseller(db, settings.home)
    bus = InProcessBus(task_threads=max(1, settings.signing_workers))
    transport = InProcessTransport(bus)
    started: list[Any] = []
    try:
        signing = start_signing(settings, bus, db)
        started.append(signing)
        settings = settings.with_ports(replace(settings.ports, signing=signing.server.port))
        web = start_web(settings, db)
        started.append(web)
        if not settings.verify_base_url_configured:
            settings = replace(settings, verify_base_url=f"{web.base_url}/v")
        webhooks = WebhookSettings.from_env()
        quota = start_quota(
            settings, db, transport, payments, more_services=_webhook_api(db, webhooks)
        )
        started.append(quota)
        started.append(start_webhooks(settings, webhooks, db, transport))
        stamping = start_stamping(settings, db, transport)
        started.append(stamping)
        verify = start_verify(settings, db)
        started.append(verify)
        ports = Ports(
            quota.server.port,
            stamping.server.port,
            signing.server.port,
            verify.port,
            quota.server.mtls_port or 0,
            stamping.server.mtls_port or 0,
            web.port,
        )
        metrics = serve_metrics("embedded", settings.bind_host, metrics_port() or 0)
        started.append(metrics)
        files.write(settings.server_host, ports, insecure=settings.insecure, metrics=metrics.url)
        try:
            remember_home(settings.home)
        except OSError as error:
            log.warning("could not record %s in the user's config: %s", settings.home, error)
        settle_garbage_collector()
        ready(ports)
        wait_for_termination_signal()
    finally:
        files.remove()  # only if this process wrote it
        stop_all(started, 5.0)
        bus.stop()
        db.dispose()


def run_service(name: str, settings: Settings, ready: Callable[[int], None]) -> None:
    """Run one service in this process, on the broker when ``AMQP_URL`` is set."""
    if name in ("verify", "web"):  # public uploads: give large buffers back
        return_large_buffers()
    else:
        keep_large_buffers()
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    # Decided before anything starts: a quota service without a provider named must not run.
    payments = (
        choose_payment_provider(settings.payment_provider, default=None)
        if name == "quota"
        else None
    )
    make_home_private(settings.home)
    bus: InProcessBus | None = None
    transport: Transport
    if settings.amqp_url is None:
        if name in ("quota", "stamping"):  # signing, verify and web use no broker
            log.warning("AMQP_URL is not set: %s uses an in-process bus (single process)", name)
        bus = InProcessBus()
        transport = InProcessTransport(bus)
    else:
        transport = BrokerTransport(settings.amqp_url)
    # More connections than the 16 gRPC threads plus consumers and relay, so a burst does not
    # open new database sessions per request.
    db = create_engine(settings.database_url, pool_size=24, max_overflow=16)
    runtime: Any
    metrics = _serve_metrics(name, settings)
    try:
        if name == "signing":
            runtime = start_signing(settings, bus, db)
            port = runtime.server.port
        else:
            migrate(db)
            if name == "quota":
                assert payments is not None
                runtime = start_quota(
                    settings,
                    db,
                    transport,
                    payments,
                    more_services=_webhook_api(db, WebhookSettings.from_env()),
                )
                port = runtime.server.port
            elif name == "stamping":
                # Short GIL turns: a refusal or a health check needs the interpreter for
                # microseconds and should not wait 5 ms (the default) behind PDF work each
                # time a thread hands over.
                sys.setswitchinterval(STAMPING_SWITCH_INTERVAL_S)
                runtime = start_stamping(settings, db, transport)
                port = runtime.server.port
            elif name == "web":
                runtime = start_web(settings, db)
                port = runtime.port
            else:
                runtime = start_verify(settings, db)
                port = runtime.port
        settle_garbage_collector()
        ready(port)
        wait_for_termination_signal()
        runtime.stop(GRACE_S, DRAIN_DELAY_S)
    finally:
        transport.stop()
        if bus is not None:
            bus.stop()
        db.dispose()
        if metrics is not None:
            metrics.stop()


def run_finishing_worker(settings: Settings, ready: Callable[[], None]) -> None:
    """Finish signed documents on the broker until SIGTERM (``meterai worker finishing``).

    On SIGTERM it publishes what its outbox holds, then stops consuming: an answer taken and
    not acknowledged goes back to the queue, and finishing it elsewhere has the same effect;
    outbox rows written after that are published by any other relay.
    """
    if settings.amqp_url is None:
        raise SystemExit(
            "meterai worker finishing needs AMQP_URL (RabbitMQ); the embedded platform "
            "finishes in-process"
        )
    keep_large_buffers()
    make_home_private(settings.home)
    transport = BrokerTransport(settings.amqp_url)
    db = create_engine(settings.database_url, pool_size=max(4, settings.finishers + 2))
    metrics = _serve_metrics("finishing-worker", settings)
    try:
        migrate(db)
        runtime = start_finishing(settings, db, transport)
        settle_garbage_collector()
        ready()
        wait_for_termination_signal()
        runtime.stop()
    finally:
        transport.stop()
        db.dispose()
        if metrics is not None:
            metrics.stop()


def run_webhook_dispatcher(
    settings: Settings, webhooks: WebhookSettings, ready: Callable[[], None]
) -> None:
    """Deliver webhooks until SIGTERM (``meterai worker webhooks``).

    It consumes its own queue on the broker as the ``webhooks`` broker user and posts from the
    delivery log; stamping never waits for it. Several may run: each attempt is claimed in
    the database, so one process posts it. On SIGTERM attempts in flight finish; an
    announcement taken and not yet recorded goes back to the queue.
    """
    if settings.amqp_url is None:
        raise SystemExit(
            "meterai worker webhooks needs AMQP_URL (RabbitMQ); the embedded platform "
            "delivers webhooks in-process"
        )
    make_home_private(settings.home)
    transport = BrokerTransport(settings.amqp_url)
    db = create_engine(settings.database_url, pool_size=webhooks.concurrency + 4)
    metrics = _serve_metrics("webhooks-worker", settings)
    try:
        migrate(db)
        runtime = start_webhooks(settings, webhooks, db, transport)
        ready()
        wait_for_termination_signal()
        runtime.stop(GRACE_S)
    finally:
        transport.stop()
        db.dispose()
        if metrics is not None:
            metrics.stop()


def _webhook_api(db: Engine, webhooks: WebhookSettings) -> Callable[[Any], list[ServiceEntry]]:
    """WebhookService on the quota port, behind quota's authenticator (the reseller's key)."""
    return lambda authenticator: [webhook_service(db, authenticator, webhooks)]


def _serve_metrics(kind: str, settings: Settings) -> MetricsServer | None:
    """``/metrics`` on ``METRICS_PORT`` at ``GRPC_HOST``, when the port is set."""
    port = metrics_port()
    return None if port is None else serve_metrics(kind, settings.bind_host, port)
