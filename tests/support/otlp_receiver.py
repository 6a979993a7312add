"""An OTLP/HTTP trace receiver that keeps what it is sent in memory, for tests.

The platform's processes export spans exactly as they would to a production collector
(OpenTelemetry's own OTLP/HTTP exporter, protobuf bodies on ``/v1/traces``); this receiver
decodes them with OpenTelemetry's own protobuf definitions and holds them in a list the test
reads. Nothing about the platform's export is faked: only the collector is small.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

__all__ = ["ReceivedSpan", "SpanReceiver", "serving_span_receiver"]


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    """The exporting process's ``service.name``."""
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    """Empty for a trace's root."""
    kind: int
    attributes: dict[str, str]


@dataclass
class SpanReceiver:
    url: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "",
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {
                        a.key: a.value.string_value or str(a.value.int_value)
                        for a in span.attributes
                    }
                    received.append(
                        ReceivedSpan(
                            service=service,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes=attributes,
                        )
                    )
        with self._lock:
            self.spans.extend(received)

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def wait_for(
        self, what: str, test: Callable[[list[ReceivedSpan]], bool], timeout: float = 30
    ) -> list[ReceivedSpan]:
        """The spans received once ``test`` holds for them; fails naming ``what`` after
        ``timeout`` seconds (exporters send every few hundred milliseconds)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.snapshot()
            if test(spans):
                return spans
            if time.monotonic() > deadline:
                seen = sorted({(s.service, s.name) for s in spans})
                raise AssertionError(f"never received {what}; spans seen: {seen}")
            time.sleep(0.2)


def _handler(receiver: SpanReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            receiver.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads the spans, not an access log."""

    return Handler


@contextmanager
def serving_span_receiver() -> Iterator[SpanReceiver]:
    """A receiver listening on a free loopback port; its ``url`` is what
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes."""
    receiver = SpanReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
