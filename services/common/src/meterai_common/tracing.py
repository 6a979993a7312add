"""OpenTelemetry traces: one trace per job, from the reseller's call to the finished stamp.

A job crosses four processes and two queues (stamping API → outbox → RabbitMQ → signing
worker → RabbitMQ → finishing), so a slow or failed stamp is explained only by spans that
follow it across all of them. The trace context travels with the job in W3C ``traceparent``
form: in the gRPC call's metadata (a reseller may send its own, the trace then starts in the
reseller's system), in each sign request of a batch task, and in each signing answer. A batch
carries many jobs, so the context rides per document, not per message: every job keeps its
own trace however it was batched.

Export is off unless the operator asks for it with the standard OpenTelemetry variables
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, OTLP over HTTP;
``OTEL_SERVICE_NAME`` overrides the process name; ``OTEL_SDK_DISABLED=true`` wins over all).
Off, the API's no-op tracer is used: no context is carried and a span costs a function call.

What spans never hold: document bytes, API keys, CMS blobs. Attributes are ids (job, serial,
batch size) and outcomes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from meterai_common.grpc_handlers import wrap_behaviour

__all__ = [
    "Carrier",
    "GrpcTracing",
    "annotate",
    "carrier_of_current",
    "configure",
    "current_trace_id",
    "enabled",
    "server_interceptors",
    "span",
    "spans_for",
]

log = logging.getLogger(__name__)

Carrier = dict[str, str]
"""W3C trace context headers (``traceparent``, ``tracestate``) of one job."""

_TRACER_NAME = "meterai"
_enabled = False


def enabled() -> bool:
    """Whether this process exports spans (and so carries trace context onward)."""
    return _enabled


def configure(process: str, environ: Mapping[str, str] | None = None) -> bool:
    """Export this process's spans over OTLP/HTTP when the environment names a collector;
    returns whether it does.

    Called once per process, before it serves (a Celery prefork child inherits the provider:
    the SDK's batch processor restarts its export thread after ``fork``).

    :param process: the ``service.name`` of the spans (``stamping``, ``worker-signing``)
        unless ``OTEL_SERVICE_NAME`` says otherwise.
    """
    global _enabled
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if not (
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {"service.name": env.get("OTEL_SERVICE_NAME") or f"meterai-{process}"}
    )
    provider = TracerProvider(resource=resource)
    # The exporter reads its endpoint, headers and timeout from the OTEL_* variables.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _enabled = True
    log.info("exporting traces as %s over OTLP/HTTP", resource.attributes["service.name"])
    return True


def _tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER_NAME)


@contextmanager
def span(
    name: str,
    *,
    parent: Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[Span]:
    """A span, current inside the block, child of ``parent`` (a job's carrier) when given,
    else of the current span. An exception leaving the block marks it failed."""
    if not _enabled:
        yield trace.INVALID_SPAN
        return
    context = propagate.extract(parent) if parent else None
    with _tracer().start_as_current_span(
        name, context=context, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


@contextmanager
def spans_for(
    name: str,
    jobs: Sequence[tuple[Mapping[str, str] | None, Mapping[str, str | int]]],
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[list[Span]]:
    """One span per job of a batch, each in its own job's trace, all ending with the block:
    the work is shared (one publish, one commit) but each job's trace shows it.

    :param jobs: per job, its carrier (jobs without one are left out: they are not traced)
        and the span's attributes.
    """
    if not _enabled:
        yield []
        return
    tracer = _tracer()
    started = [
        tracer.start_span(
            name, context=propagate.extract(parent), kind=kind, attributes=dict(attributes)
        )
        for parent, attributes in jobs
        if parent
    ]
    try:
        yield started
    except BaseException as error:
        for each in started:
            each.record_exception(error)
            each.set_status(Status(StatusCode.ERROR, type(error).__name__))
        raise
    finally:
        for each in started:
            each.end()


def annotate(**attributes: str | int) -> None:
    """Name what the current span is about (``meterai.<key>``: job, serial, reseller)."""
    if _enabled:
        current = trace.get_current_span()
        for key, value in attributes.items():
            current.set_attribute(f"meterai.{key}", value)


def carrier_of_current() -> Carrier:
    """The current span's context as headers to send with a job; empty when not tracing."""
    if not _enabled:
        return {}
    headers: Carrier = {}
    propagate.inject(headers)
    return headers


def current_trace_id() -> str | None:
    """The current trace's id (32 hex digits), for log lines; None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def server_interceptors() -> list[grpc.ServerInterceptor]:
    """What a server needs to trace its calls: nothing when this process does not export."""
    return [GrpcTracing()] if _enabled else []


_UNTRACED = ("/grpc.health.", "/grpc.reflection.")
"""Probes and API discovery: a balancer's health check every few seconds is no one's job."""


class GrpcTracing(grpc.ServerInterceptor):  # type: ignore[misc]
    """A SERVER span around every call but probes, continuing the caller's trace when its
    metadata carries a ``traceparent``; the status code is recorded on the span."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or details.method.startswith(_UNTRACED):
            return handler
        method = details.method
        headers = {
            key: value
            for key, value in (details.invocation_metadata or ())
            if key in ("traceparent", "tracestate") and isinstance(value, str)
        }
        return wrap_behaviour(
            handler,
            lambda behaviour, streaming: _traced(behaviour, method, headers, streaming=streaming),
        )


def _traced(behaviour: Any, method: str, headers: Carrier, *, streaming: bool) -> Any:
    service, _, name = method.lstrip("/").rpartition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

    def _finish(current: Span, context: grpc.ServicerContext) -> None:
        code = context.code()
        current.set_attribute("rpc.grpc.status_code", (code or grpc.StatusCode.OK).value[0])
        if code not in (None, grpc.StatusCode.OK):
            current.set_status(Status(StatusCode.ERROR, code.name))

    if streaming:

        def serve_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            parent = propagate.extract(headers) if headers else None
            current = _tracer().start_span(
                method.lstrip("/"), context=parent, kind=SpanKind.SERVER, attributes=attributes
            )
            try:
                # Made current around each step only: a generator's steps may run on
                # different threads, and a context token must be reset where it was set.
                iterator = iter(behaviour(request, context))
                while True:
                    token = otel_context.attach(trace.set_span_in_context(current))
                    try:
                        item = next(iterator)
                    except StopIteration:
                        return
                    finally:
                        otel_context.detach(token)
                    yield item
            finally:
                _finish(current, context)
                current.end()

        return serve_stream

    def serve(request: Any, context: grpc.ServicerContext) -> Any:
        parent = propagate.extract(headers) if headers else None
        with _tracer().start_as_current_span(
            method.lstrip("/"), context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as current:
            try:
                return behaviour(request, context)
            finally:
                _finish(current, context)

    return serve
