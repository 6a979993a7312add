"""Wires the signing tier: the gRPC SigningService, in-process workers (embedded) and the
Celery worker process (``meterai worker signing``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from meterai.signing.v1 import signing_pb2, signing_pb2_grpc
from meterai_common.bus import InProcessBus
from meterai_common.config import Settings
from meterai_common.db import create_engine
from meterai_common.grpc_server import RunningServer, create_server
from meterai_common.messaging import PikaPublisher, wait_for_topology
from meterai_common.metrics import metrics_port, serve_metrics
from meterai_common.peer_auth import RequirePlatformPeer
from meterai_common.private_home import make_home_private
from meterai_common.tasks import SIGN_DIGEST_TASK, SIGN_DIGESTS_TASK, make_celery
from meterai_signing.grpc_api import SigningServicer
from meterai_signing.job_check import CommittedJobs, DatabaseJobs
from meterai_signing.platform_key import platform_identity, platform_timestamper
from meterai_signing.signer import Signer
from meterai_signing.tasks import register_tasks
from meterai_signing.worker_consumer import use_worker_consumer

__all__ = ["SigningRuntime", "run_signing_worker", "start_signing"]

SERVICE_NAME = signing_pb2.DESCRIPTOR.services_by_name["SigningService"].full_name


@dataclass
class SigningRuntime:
    server: RunningServer
    signer: Signer

    def stop(self, grace: float = 10.0, drain_delay: float = 0.0) -> None:
        self.server.stop(grace, drain_delay)


def _signer(settings: Settings, jobs: CommittedJobs, events: Any) -> Signer:
    from meterai_signing.audit_hook import audit_recorder

    identity = platform_identity(settings)
    return Signer(
        identity,
        jobs,
        events=events,
        timestamper=platform_timestamper(settings),
        signed=audit_recorder(settings, identity),
    )


CALLERS = ("stamping", "finishing", "admin")
"""Platform identities whose client certificate the signing port accepts: the processes
that need the signer's chain, and the operator's command line (status)."""


def start_signing(
    settings: Settings, bus: InProcessBus | None, db: Engine | None = None
) -> SigningRuntime:
    """Serve SigningService; with ``bus`` (embedded platform) also sign queued jobs in-process.

    :param db: the embedded platform's database, where in-process signing checks its jobs.
    """
    jobs = DatabaseJobs((lambda: db) if db is not None else _open(settings))
    if bus is not None:
        signer = _signer(settings, jobs, lambda: bus)
        bus.register_task(SIGN_DIGEST_TASK, signer.sign_and_announce)
        bus.register_task(SIGN_DIGESTS_TASK, signer.sign_and_announce_many)
    else:
        url = settings.amqp_url
        assert url is not None
        signer = _signer(settings, jobs, lambda: PikaPublisher(url))
    server = create_server(
        "signing",
        settings.bind_host,
        settings.ports.signing,
        [(signing_pb2_grpc.add_SigningServiceServicer_to_server, SigningServicer(signer))],
        [SERVICE_NAME],
        interceptors=[RequirePlatformPeer("signing", CALLERS, insecure=settings.insecure)],
        tls=settings.server_tls("signing", require_client_certificate=True),
    )
    return SigningRuntime(server, signer)


def _open(settings: Settings) -> Callable[[], Engine]:
    return lambda: create_engine(settings.database_url, pool_size=2, max_overflow=2)


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
    make_home_private(settings.home)
    url = settings.amqp_url
    port = metrics_port()
    if port is not None:
        # Served by the Celery parent, adding up what its prefork children measure (the
        # command put prometheus_client in multiprocess mode, see meterai_common.metrics).
        serve_metrics("signing-worker", settings.bind_host, port)
    # Celery never declares (its user may not): wait here until the topology is there.
    wait_for_topology(url)
    app = make_celery(url)
    use_worker_consumer(app)
    signer = _signer(settings, DatabaseJobs(_open(settings)), lambda: PikaPublisher(url))
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
            "--without-heartbeat",
            f"--hostname=signing-{os.getpid()}@%h",
        ]
    )
