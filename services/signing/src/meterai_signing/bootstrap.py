"""Wires the signing tier: the gRPC SigningService, in-process workers (embedded) and the
Celery worker process (``meterai worker signing``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from meterai.signing.v1 import signing_pb2, signing_pb2_grpc
from meterai_common.bus import InProcessBus
from meterai_common.config import Settings
from meterai_common.grpc_server import RunningServer, create_server
from meterai_common.messaging import PikaPublisher
from meterai_common.tasks import SIGN_DIGEST_TASK, make_celery
from meterai_signing.grpc_api import SigningServicer
from meterai_signing.platform_key import platform_identity, platform_timestamper
from meterai_signing.signer import Signer
from meterai_signing.tasks import register_tasks

__all__ = ["SigningRuntime", "run_signing_worker", "start_signing"]

SERVICE_NAME = signing_pb2.DESCRIPTOR.services_by_name["SigningService"].full_name


@dataclass
class SigningRuntime:
    server: RunningServer
    signer: Signer

    def stop(self, grace: float = 10.0, drain_delay: float = 0.0) -> None:
        self.server.stop(grace, drain_delay)


def _signer(settings: Settings, events: Any) -> Signer:
    from meterai_signing.audit_hook import audit_recorder

    identity = platform_identity(settings)
    return Signer(
        identity,
        events=events,
        timestamper=platform_timestamper(settings),
        signed=audit_recorder(settings, identity),
    )


def start_signing(settings: Settings, bus: InProcessBus | None) -> SigningRuntime:
    """Serve SigningService; with ``bus`` (embedded platform) also sign queued jobs in-process."""
    if bus is not None:
        signer = _signer(settings, lambda: bus)
        bus.register_task(SIGN_DIGEST_TASK, signer.sign_and_announce)
    else:
        url = settings.amqp_url
        assert url is not None
        signer = _signer(settings, lambda: PikaPublisher(url))
    server = create_server(
        "signing",
        settings.bind_host,
        settings.ports.signing,
        [(signing_pb2_grpc.add_SigningServiceServicer_to_server, SigningServicer(signer))],
        [SERVICE_NAME],
    )
    return SigningRuntime(server, signer)


def run_signing_worker(settings: Settings, concurrency: int, loglevel: str = "INFO") -> None:
    """Run one Celery worker process consuming the ``signing`` queue until SIGTERM.

    SIGTERM is Celery's warm shutdown: tasks in hand finish, then the worker exits; tasks not
    acknowledged go back to the queue (late acks), so stopping or killing a worker loses none.
    """
    if settings.amqp_url is None:
        raise SystemExit(
            "meterai worker signing needs AMQP_URL (RabbitMQ); the embedded platform signs "
            "in-process"
        )
    url = settings.amqp_url
    app = make_celery(url)
    signer = _signer(settings, lambda: PikaPublisher(url))
    register_tasks(app, lambda: signer)
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            "--queues=signing",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            f"--hostname=signing-{os.getpid()}@%h",
        ]
    )
