"""Prometheus metrics of every meterai process: one registry, the names operators alert on.

Each process (every ``meterai serve X``, each worker kind, ``meterai up``) owns one
:data:`REGISTRY` and serves it over HTTP at ``/metrics`` (:func:`serve_metrics`). The metrics
are defined here, once, so that dashboards and alert rules in ``deploy/`` can be checked
against the names that exist (:func:`exposed_names`) and a renamed metric fails a test instead
of silently emptying a graph.

Names follow the Prometheus conventions: a ``meterai_`` prefix, base units (seconds), counters
ending ``_total`` (the client library adds the suffix), and labels of bounded cardinality only
(method, status code, refusal reason, queue, process kind; never a reseller, job or serial).

Counters move where the event happens (admission, the stamping handlers, the gRPC
interceptor); gauges that need a database or broker query are sampled off the hot path by a
:class:`~meterai_common.runtime.Periodic` chore in the stamping tier.

``meterai worker signing`` signs in Celery's prefork children, which no HTTP thread of the
parent can read. It runs in the library's multiprocess mode instead: the command sets
``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before this module is imported, every
process (parent and children, which inherit it) writes its values to files there, and the
parent's ``/metrics`` adds them up (:func:`serve_metrics`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from meterai_common.grpc_handlers import wrap_behaviour

__all__ = [
    "BACKLOG_JOBS",
    "BACKLOG_OLDEST_AGE",
    "DEAD_LETTERS_PENDING",
    "GRPC_HANDLED",
    "GRPC_HANDLING_SECONDS",
    "LEDGER_UNITS",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_PENDING",
    "QUEUE_CONSUMERS",
    "QUEUE_MESSAGES",
    "REGISTRY",
    "SIGNING_SECONDS",
    "STAMPS_DONE",
    "STAMPS_FAILED",
    "STAMPS_REFUNDED",
    "SUBMITS_ADMITTED",
    "SUBMITS_REFUSED",
    "WORKER_HEARTBEAT",
    "WORKER_UP",
    "GrpcMetrics",
    "MetricsServer",
    "exposed_names",
    "metrics_port",
    "serve_metrics",
]

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
"""The process's registry: not the library's global one, so nothing a dependency registers
by import leaks into what operators alert on."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""From a refusal (milliseconds) to a large document's submit under load (seconds)."""
SIGNING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""A CMS over a digest takes milliseconds with a key in memory, more with a token or a TSA."""

GRPC_HANDLED = Counter(
    "meterai_grpc_server_handled",
    "gRPC calls completed by the server, by full method name and status code.",
    ["method", "code"],
    registry=REGISTRY,
)
GRPC_HANDLING_SECONDS = Histogram(
    "meterai_grpc_server_handling_seconds",
    "Time from a call's start to its status, by full method name (refusals included).",
    ["method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
SUBMITS_ADMITTED = Counter(
    "meterai_submits_admitted",
    "Submissions that passed admission control (backlog, broker, rate and in-flight limits).",
    registry=REGISTRY,
)
SUBMITS_REFUSED = Counter(
    "meterai_submits_refused",
    "Submissions refused with retry advice, by reason (backlog, backlog_wait, broker, batches, "
    "rate_limit, inflight, server_queue).",
    ["reason"],
    registry=REGISTRY,
)
STAMPS_DONE = Counter(
    "meterai_stamps_done",
    "Stamps committed: signature embedded, quota unit consumed, serial issued.",
    registry=REGISTRY,
)
STAMPS_FAILED = Counter(
    "meterai_stamps_failed",
    "Jobs ended FAILED or DEAD_LETTERED (each one refunds its hold).",
    registry=REGISTRY,
)
STAMPS_REFUNDED = Counter(
    "meterai_stamps_refunded",
    "Quota holds released back to the reseller because their stamp could not be made.",
    registry=REGISTRY,
)
SIGNING_SECONDS = Histogram(
    "meterai_signing_duration_seconds",
    "Time to build one CMS signature over a digest (key operation and timestamp).",
    buckets=SIGNING_BUCKETS,
    registry=REGISTRY,
)
BACKLOG_JOBS = Gauge(
    "meterai_backlog_jobs",
    "Documents accepted and waiting for the signing tier (jobs PREPARED).",
    registry=REGISTRY,
)
BACKLOG_OLDEST_AGE = Gauge(
    "meterai_backlog_oldest_age_seconds",
    "Age of the oldest document waiting for the signing tier; 0 when none waits.",
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "meterai_outbox_pending_messages",
    "Outbox rows committed and not yet published to the broker.",
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "meterai_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row; 0 when none waits.",
    registry=REGISTRY,
)
DEAD_LETTERS_PENDING = Gauge(
    "meterai_dead_letters_pending",
    "Dead-lettered messages recorded and not yet re-driven by an operator.",
    registry=REGISTRY,
)
QUEUE_MESSAGES = Gauge(
    "meterai_queue_messages",
    "Messages ready in each RabbitMQ queue (passive declare; absent on the in-process bus).",
    ["queue"],
    registry=REGISTRY,
)
QUEUE_CONSUMERS = Gauge(
    "meterai_queue_consumers",
    "Consumers of each RabbitMQ queue: for 'signing', the signing worker processes.",
    ["queue"],
    registry=REGISTRY,
)
LEDGER_UNITS = Gauge(
    "meterai_ledger_units",
    "Quota units over every owner, by ledger state (purchased, available, held, consumed).",
    ["state"],
    registry=REGISTRY,
)
WORKER_UP = Gauge(
    "meterai_worker_up",
    "1 while this process serves, by process kind (quota, stamping, signing-worker, ...).",
    ["kind"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
WORKER_HEARTBEAT = Gauge(
    "meterai_worker_heartbeat_timestamp_seconds",
    "Unix time this process last proved it is alive; a stuck process stops moving it.",
    ["kind"],
    registry=REGISTRY,
    multiprocess_mode="max",
)

HEARTBEAT_S = 5.0


def exposed_names() -> frozenset[str]:
    """Every sample name the registry can expose (``_total``, ``_bucket``, ``_sum``, ...).

    What dashboards and alert rules may reference: anything else is a typo or a stale name.
    """
    names: set[str] = set()
    for collector in _collectors():
        for family in collector.describe():
            names.add(family.name)
            if family.type == "counter":
                names.update({f"{family.name}_total", f"{family.name}_created"})
            elif family.type == "histogram":
                names.update(
                    f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count", "_created")
                )
    return frozenset(names)


def _collectors() -> Iterable[MetricWrapperBase]:
    return [value for value in globals().values() if isinstance(value, MetricWrapperBase)]


def metrics_port(environ: Mapping[str, str] = os.environ) -> int | None:
    """``METRICS_PORT`` as a port number; None when unset (no metrics server)."""
    raw = environ.get("METRICS_PORT", "").strip()
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"METRICS_PORT must be a port number, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"METRICS_PORT must be between 0 and 65535, got {port}")
    return port


@dataclass
class MetricsServer:
    """The ``/metrics`` endpoint of this process, and its liveness heartbeat."""

    kind: str
    host: str
    port: int
    _httpd: WSGIServer
    _stop: Callable[[], None]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self, grace: float = 0.0, drain_delay: float = 0.0) -> None:
        """Stop serving; ``grace`` and ``drain_delay`` are accepted like every runtime's
        (:func:`meterai_common.runtime.stop_all` passes both; a scrape needs neither)."""
        WORKER_UP.labels(self.kind).set(0)
        self._stop()
        self._httpd.shutdown()
        self._httpd.server_close()


def serve_metrics(kind: str, host: str, port: int) -> MetricsServer:
    """Serve :data:`REGISTRY` on ``http://host:port/metrics`` (0 picks a free port) and mark
    this process alive as ``kind``.

    Plain HTTP, as Prometheus scrapes by default: the metrics carry counts and durations, no
    key, reseller, document or serial, and the port is bound to ``GRPC_HOST`` like the rest.
    """
    from meterai_common.runtime import Periodic

    registry = REGISTRY
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:  # this process and its forked workers, added up (see the module's doc)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
    httpd, _thread = start_http_server(port, addr=host, registry=registry)
    WORKER_UP.labels(kind).set(1)
    heartbeat = WORKER_HEARTBEAT.labels(kind)
    heartbeat.set(time.time())
    beat = Periodic(f"metrics-heartbeat-{kind}", HEARTBEAT_S, [lambda: heartbeat.set(time.time())])
    beat.start()
    bound = int(httpd.server_port)
    log.info("%s metrics on http://%s:%d/metrics", kind, host, bound)
    return MetricsServer(kind, host, bound, httpd, beat.stop)


class GrpcMetrics(grpc.ServerInterceptor):  # type: ignore[misc]
    """Counts every call by method and status code and times it, on any server.

    It wraps the behaviour the rest of the chain chose, so it sees the final status whoever
    set it (the servicer, an abort, an early refusal); :func:`wrap_behaviour` keeps the
    behaviour's own thread pool.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        return wrap_behaviour(
            handler, lambda behaviour, streaming: _measured(behaviour, method, streaming=streaming)
        )


def _code_of(context: grpc.ServicerContext, error: BaseException | None) -> str:
    code = context.code()
    if code is not None:
        return str(code.name)
    if isinstance(error, GeneratorExit):  # a stream closed under us: the client went away
        return "CANCELLED"
    return "UNKNOWN" if error is not None else "OK"


_children: dict[tuple[str, ...], Any] = {}
"""Label children by label values: ``labels()`` takes a lock and builds a key on every call,
which the hot path of every RPC should not pay (the set is bounded: methods x codes)."""


def _observe(method: str, started: float, context: grpc.ServicerContext, error: Any) -> None:
    elapsed = time.perf_counter() - started
    code = _code_of(context, error)
    seconds = _children.get((method,))
    if seconds is None:
        seconds = _children[(method,)] = GRPC_HANDLING_SECONDS.labels(method)
    handled = _children.get((method, code))
    if handled is None:
        handled = _children[(method, code)] = GRPC_HANDLED.labels(method, code)
    seconds.observe(elapsed)
    handled.inc()


def _measured(behaviour: Any, method: str, *, streaming: bool) -> Any:
    if streaming:

        def serve_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                yield from behaviour(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                _observe(method, started, context, error)
                # Break the cycle frame -> error -> traceback -> frame: it would keep the
                # request (an upload of megabytes) alive until the next full collection.
                error = None

        return serve_stream

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return behaviour(request, context)
        except BaseException as raised:
            error = raised
            raise
        finally:
            _observe(method, started, context, error)
            error = None  # no frame -> error -> traceback -> frame cycle (see above)

    return serve
