"""One trace per job: a reseller's traced call, followed through the stamping service, the
outbox relay, RabbitMQ, a signing worker and a separate finishing worker, arrives at an OTLP
collector as one trace whose spans link up, from every process that touched the job.

The platform runs distributed (each service and worker its own process, PostgreSQL and
RabbitMQ), exporting with OpenTelemetry's OTLP/HTTP exporter to an in-memory receiver
(:mod:`tests.support.otlp_receiver`). The reseller sends its own ``traceparent``, as a reseller
whose system is traced does: the job's spans must continue that trace, not start another.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from tests.support.brokers import private_vhost
from tests.support.channels import platform_channel
from tests.support.corpus import CORPUS
from tests.support.databases import migrated_postgres_database
from tests.support.launch import DistributedPlatform
from tests.support.otlp_receiver import ReceivedSpan, SpanReceiver, serving_span_receiver

DOCUMENT = CORPUS / "pdflatex-4-pages.pdf"
SUBMIT = "meterai.stamping.v1.StampingService/SubmitDocument"


@dataclass
class Traced:
    platform: DistributedPlatform
    receiver: SpanReceiver
    api_key: str


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    """Its own database and virtual host: a stamping service without finishers judges the
    broker by the oldest unpublished outbox row, and the session's shared database holds rows
    other tests left unpublished."""
    with (
        serving_span_receiver() as receiver,
        migrated_postgres_database() as database_url,
        private_vhost() as amqp_url,
    ):
        platform = DistributedPlatform(tmp_path_factory.mktemp("traces"))
        platform.start(
            database_url,
            amqp_url,
            workers=1,
            extra_env={
                "METERAI_PAYMENT_PROVIDER": "dev",
                "METERAI_STAMPING_FINISHERS": "0",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
        )
        try:
            platform.add_finisher("finishing", concurrency=1)
            reseller = platform.cli("admin", "create-reseller", "Traced Reseller", "--json")
            assert reseller.code == 0, reseller.stderr
            api_key = str(reseller.json()["api_key"])
            bought = platform.cli("quota", "buy", "2", api_key=api_key)
            assert bought.code == 0, bought.stderr
            yield Traced(platform, receiver, api_key)
        finally:
            platform.stop()


def _submit(traced: Traced, traceparent: str) -> stamping_pb2.Job:
    port = int(traced.platform.env["STAMPING_PORT"])
    with platform_channel(traced.platform.home, port) as channel:
        stub = stamping_pb2_grpc.StampingServiceStub(channel)
        job = stub.SubmitDocument(
            stamping_pb2.SubmitDocumentRequest(
                pdf=DOCUMENT.read_bytes(),
                placement=stamping_pb2.Placement(
                    page=1, rect=stamping_pb2.Rect(x0=380, y0=60, x1=520, y1=200)
                ),
                metadata=stamping_pb2.DocumentMetadata(document_type="Surat Lamaran"),
                filename=DOCUMENT.name,
                idempotency_key=secrets.token_hex(8),
            ),
            metadata=(("x-api-key", traced.api_key), ("traceparent", traceparent)),
            timeout=30,
        )
        deadline = time.monotonic() + 60
        while job.state != stamping_pb2.JOB_STATE_DONE:
            assert time.monotonic() < deadline, f"job never finished: {job}"
            assert job.state not in (
                stamping_pb2.JOB_STATE_FAILED,
                stamping_pb2.JOB_STATE_DEAD_LETTERED,
            ), job
            time.sleep(0.2)
            job = stub.GetJob(
                stamping_pb2.GetJobRequest(job_id=job.job_id),
                metadata=(("x-api-key", traced.api_key),),
                timeout=10,
            )
        return job


def _of_trace(trace_id: str, names: set[str]):  # type: ignore[no-untyped-def]
    def done(spans: list[ReceivedSpan]) -> bool:
        return names <= {s.name for s in spans if s.trace_id == trace_id}

    return done


def test_a_job_is_one_trace_from_the_resellers_call_through_every_process(
    traced: Traced,
) -> None:
    trace_id, reseller_span = secrets.token_hex(16), secrets.token_hex(8)
    job = _submit(traced, f"00-{trace_id}-{reseller_span}-01")
    names = {SUBMIT, "outbox publish sign", "sign digest", "finish stamp"}
    spans = traced.receiver.wait_for(
        f"the spans of job {job.job_id}", _of_trace(trace_id, names), timeout=30
    )
    mine = [s for s in spans if s.trace_id == trace_id]
    by_name = {s.name: s for s in mine}

    # Every process that touched the job reported into the one trace.
    assert {s.service for s in mine} >= {
        "meterai-stamping",
        "meterai-worker-signing",
        "meterai-worker-finishing",
    }, sorted({(s.service, s.name) for s in mine})
    # ... and the spans link up: the reseller's span is the root's parent, each hop a child
    # of the hop that handed the job on.
    assert by_name[SUBMIT].parent_span_id == reseller_span
    assert by_name["outbox publish sign"].parent_span_id == by_name[SUBMIT].span_id
    assert by_name["sign digest"].parent_span_id == by_name[SUBMIT].span_id
    assert by_name["finish stamp"].parent_span_id == by_name["sign digest"].span_id
    known = {s.span_id for s in mine} | {reseller_span}
    assert all(s.parent_span_id in known for s in mine), mine
    # They say which job, serial and reseller they are about.
    for name in ("sign digest", "finish stamp"):
        assert by_name[name].attributes["meterai.job_id"] == job.job_id
        assert by_name[name].attributes["meterai.serial"] == job.serial
    assert by_name[SUBMIT].attributes["meterai.job_id"] == job.job_id
    assert by_name[SUBMIT].attributes["meterai.reseller_id"]
    assert by_name[SUBMIT].attributes["rpc.grpc.status_code"] == "0"


def test_spans_carry_ids_never_secrets_or_document_bytes(traced: Traced) -> None:
    trace_id = secrets.token_hex(16)
    _submit(traced, f"00-{trace_id}-{secrets.token_hex(8)}-01")
    spans = traced.receiver.wait_for(
        "a finished job's trace", _of_trace(trace_id, {"finish stamp"}), timeout=30
    )
    values = [value for s in spans for value in s.attributes.values()]
    assert values
    assert not [v for v in values if traced.api_key in v or "%PDF" in v or "mtk_" in v]


def test_a_refused_call_is_a_failed_span_with_its_status(traced: Traced) -> None:
    """Spans show refusals too: an unauthenticated submit is UNAUTHENTICATED on its span."""
    trace_id = secrets.token_hex(16)
    port = int(traced.platform.env["STAMPING_PORT"])
    with platform_channel(traced.platform.home, port) as channel:
        stub = stamping_pb2_grpc.StampingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubmitDocument(
                stamping_pb2.SubmitDocumentRequest(idempotency_key="no-key"),
                metadata=(("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),),
                timeout=10,
            )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    spans = traced.receiver.wait_for(
        "the refused call's span", _of_trace(trace_id, {SUBMIT}), timeout=30
    )
    (span,) = [s for s in spans if s.trace_id == trace_id]
    assert span.attributes["rpc.grpc.status_code"] == str(grpc.StatusCode.UNAUTHENTICATED.value[0])
