"""gRPC server construction, health reporting and graceful shutdown shared by every service.

Settings keep the guarantees the README lists: a bounded number of concurrent RPCs so overload is
refused fast (RESOURCE_EXHAUSTED with retry advice, :class:`CallLimit`, instead of gRPC's own
limit that gives none) rather than queued without limit; server reflection on every service;
a receive limit that admits
the largest accepted document, no SO_REUSEPORT (two servers silently sharing a port would split
traffic), keepalive settings that tolerate client pings.
"""

from __future__ import annotations

import collections
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from meterai_common import tracing
from meterai_common.call_limit import CallLimit
from meterai_common.metrics import GrpcMetrics
from meterai_common.tls import ServerTls

__all__ = [
    "MAX_MESSAGE_BYTES",
    "RunningServer",
    "TimedThreadPool",
    "create_server",
    "wait_for_termination_signal",
]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 25 * 1024 * 1024
"""Largest request accepted: a 20 MiB document plus protobuf framing and metadata."""


class TimedThreadPool(futures.ThreadPoolExecutor):
    """A server's worker pool that knows how long its oldest queued call has waited.

    gRPC Python submits every call it accepts to its pool, even one cancelled before a worker
    takes it, and the pool starts them in order; so the submit times of calls not started yet
    are a queue whose head is the longest wait. That wait is what a caller feels before any
    work is done for it, the measure load shedding needs (see ``EarlyRefusal``).
    """

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._queued: collections.deque[float] = collections.deque()
        self._queue_lock = threading.Lock()
        self._outstanding = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self._queue_lock:
            self._queued.append(time.monotonic())
            self._outstanding += 1
        return super().submit(self._started, fn, *args, **kwargs)

    def _started(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self._queue_lock:
            if self._queued:
                self._queued.popleft()
        try:
            return fn(*args, **kwargs)
        finally:
            with self._queue_lock:
                self._outstanding -= 1

    def outstanding(self) -> int:
        """Calls submitted and not finished: queued or being served (a stream until it ends)."""
        with self._queue_lock:
            return self._outstanding

    def queued(self) -> int:
        """Calls submitted and not started yet."""
        with self._queue_lock:
            return len(self._queued)

    def oldest_wait(self) -> float:
        """Seconds the oldest call not yet started has waited; 0 when none waits."""
        with self._queue_lock:
            return time.monotonic() - self._queued[0] if self._queued else 0.0


@dataclass
class RunningServer:
    """A started gRPC server, the port it bound and the health servicer that reports it."""

    name: str
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: tuple[str, ...]
    mtls_port: int | None = None
    """The port that requires a client certificate (resellers authenticating with one), if
    this server has one."""

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", *self.service_names):
            self.health.set(service, status)

    def stop(self, grace: float = 10.0, drain_delay: float = 0.0) -> None:
        """Report NOT_SERVING first so balancers stop sending us calls, keep serving for
        ``drain_delay`` seconds while they notice, then refuse new calls and let in-flight
        ones finish within ``grace``."""
        self.set_serving(False)
        if drain_delay > 0:
            time.sleep(drain_delay)
        self.server.stop(grace).wait()


def create_server(
    name: str,
    host: str,
    port: int,
    register: Iterable[tuple[object, object]],
    service_names: Sequence[str],
    *,
    max_workers: int = 16,
    max_concurrent_rpcs: int | None = 64,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    pool: futures.ThreadPoolExecutor | None = None,
    tls: ServerTls | None,
    mtls_port: int | None = None,
) -> RunningServer:
    """Build, bind and start a server.

    :param register: pairs of ``(add_XServicer_to_server, servicer)``.
    :param service_names: full proto service names reported by the health service.
    :param port: 0 binds a free port; the bound port is returned.
    :param max_concurrent_rpcs: calls queued or served at once beyond which new calls are
        refused with retry advice; None: no bound.
    :param interceptors: run on the server's network thread for every new call, in order
        (after the one that counts and times every call, :mod:`meterai_common.metrics`, the
        one that traces it when this process exports traces, and the call limit).
    :param pool: the workers that serve calls, instead of ``max_workers`` new threads (a
        :class:`TimedThreadPool` when there is a call limit).
    :param tls: the server's certificate; ``None`` serves plaintext, which only an explicit
        ``--insecure`` / ``METERAI_INSECURE=1`` asks for (and is announced loudly).
    :param mtls_port: also listen here, requiring a client certificate from the platform CA
        (resellers who authenticate with a certificate instead of a key); 0 picks a free one.
    """
    workers = pool or TimedThreadPool(max_workers, thread_name_prefix=f"grpc-{name}")
    limit: list[grpc.ServerInterceptor] = []
    if max_concurrent_rpcs is not None:
        if not isinstance(workers, TimedThreadPool):
            raise TypeError("a call limit needs a TimedThreadPool, which counts its calls")
        limit.append(CallLimit(max_concurrent_rpcs, workers.outstanding))
    server = grpc.server(
        workers,
        interceptors=(GrpcMetrics(), *tracing.server_interceptors(), *limit, *interceptors),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
        ],
    )
    for add, servicer in register:
        add(servicer, server)  # type: ignore[operator]
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # grpcurl, Postman and Evans discover the API from the server itself.
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if tls is None:
        bound = _bind(name, host, port, lambda: server.add_insecure_port(f"{host}:{port}"))
    else:
        bound = _bind(
            name, host, port, lambda: server.add_secure_port(f"{host}:{port}", tls.credentials())
        )
    bound_mtls: int | None = None
    if mtls_port is not None and tls is not None:
        bound_mtls = _bind(
            name,
            host,
            mtls_port,
            lambda: server.add_secure_port(
                f"{host}:{mtls_port}", tls.credentials(require_client_certificate=True)
            ),
        )
    server.start()
    running = RunningServer(name, server, bound, health_servicer, tuple(service_names), bound_mtls)
    running.set_serving(True)
    if tls is None:
        log.warning(
            "%s serving PLAINTEXT on %s:%d (insecure mode): API keys and documents cross the "
            "network unencrypted; never run this way outside a development machine",
            name,
            host,
            bound,
        )
    else:
        mode = "TLS, client certificate required" if tls.require_client_certificate else "TLS"
        extra = f", mTLS for resellers on :{bound_mtls}" if bound_mtls else ""
        log.info("%s serving on %s:%d (%s%s)", name, host, bound, mode, extra)
    return running


def _bind(name: str, host: str, port: int, add: Callable[[], int]) -> int:
    """Bind one port; a port in use is an :class:`OSError` naming it (grpc reports it as 0 or
    as a bare RuntimeError depending on the version)."""
    try:
        bound = add()
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise OSError(f"{name}: cannot bind {host}:{port} (in use?)")
    return bound


def wait_for_termination_signal() -> None:
    """Block until SIGINT or SIGTERM arrives (Ctrl-C in a terminal, ``docker stop``)."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
