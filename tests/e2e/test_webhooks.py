"""Webhooks on ``meterai up`` (its own process) to a receiver in another process over HTTPS.

The receiver (``tests/support/webhook_receiver.py``, certificate from the test PKI, every
request checked with ``examples/webhooks/verify.py``) is down, then slow, then answers 500,
then recovers: every event still arrives at least once, each job's events in order, a batch's
``batch.done`` after its documents' events; a second endpoint that refuses until its
deliveries are dead is replayed from the dead-letter view; a rotated secret signs beside the
old one; forged and stale requests are rejected by the example verifier. Back-off is tuned to
tenths of a second (``METERAI_WEBHOOK_*``), so the schedule runs in seconds, not hours.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from meterai.stamping.v1 import stamping_pb2
from meterai.webhooks.v1 import webhooks_pb2
from meterai_client import Client, error_of
from meterai_common.tls import ensure_platform_tls
from tests.support.launch import EmbeddedPlatform, free_port_block
from tests.support.webhook_receiver import Receiver
from tests.unit.stamping.samples import build_pdf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "webhooks"))
from verify import InvalidWebhook, verify  # noqa: E402

RECT = (300.0, 60.0, 440.0, 200.0)
BACKOFF = {
    "METERAI_WEBHOOK_RETRY_BASE_S": "0.2",
    "METERAI_WEBHOOK_RETRY_CAP_S": "0.8",
    "METERAI_WEBHOOK_MAX_ATTEMPTS": "20",
    "METERAI_WEBHOOK_TIMEOUT_S": "0.5",
    "METERAI_WEBHOOK_POLL_S": "0.1",
}
"""Waits of 0.1-0.2, 0.2-0.4, then 0.4-0.8 s: twenty attempts take 7-14 s, longer than the
main receiver's whole outage (about 4 s), so only the endpoint that keeps refusing dies."""


def _until(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    directory = tmp_path_factory.mktemp("receiver")
    ensure_platform_tls(directory / "tls")
    found = Receiver(free_port_block(1), directory)
    found.modes(main="ok", second="fail")
    found.trust()
    yield found
    found.stop()


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[EmbeddedPlatform]:
    started = EmbeddedPlatform(tmp_path_factory.mktemp("webhooks"))
    started.start(
        {**BACKOFF, "METERAI_WEBHOOK_CA_FILE": str(receiver.directory / "tls" / "ca.crt")}
    )
    assert started.cli("quota", "buy", "20").code == 0
    yield started
    started.stop()


def _cli_json(platform: EmbeddedPlatform, *args: str, api_key: str | None = None) -> dict[str, Any]:
    result = platform.cli("webhooks", *args, "--json", api_key=api_key)
    assert result.code == 0, result.stderr
    return result.json()


def _submit(client: Client, tag: str) -> str:
    pdf = build_pdf() + f"\n% {tag}\n".encode()
    return client.submit(pdf, page=1, rect=RECT, document_type="Surat Perjanjian").job_id


def _batch(client: Client, key: str, count: int) -> tuple[str, list[str]]:
    def documents() -> Iterator[stamping_pb2.SubmitBatchRequest]:
        for index in range(count):
            yield stamping_pb2.SubmitBatchRequest(
                idempotency_key=key,
                document=stamping_pb2.SubmitDocumentRequest(
                    pdf=build_pdf() + f"\n% {key} {index}\n".encode(),
                    placement=stamping_pb2.Placement(
                        page=1, rect=stamping_pb2.Rect(x0=300, y0=60, x1=440, y1=200)
                    ),
                    metadata=stamping_pb2.DocumentMetadata(document_type="Surat Perjanjian"),
                    filename=f"{index}.pdf",
                ),
            )

    batch = client.stamping.SubmitBatch(documents(), timeout=60)
    return batch.batch_id, [item.job.job_id for item in batch.items]


def _deliveries(
    client: Client,
    endpoint: str,
    state: Any = webhooks_pb2.DELIVERY_STATE_UNSPECIFIED,
) -> list[webhooks_pb2.Delivery]:
    """The delivery log over gRPC (the CLI's ``deliveries`` and ``dead`` call the same)."""
    answer = client.webhooks.ListDeliveries(
        webhooks_pb2.ListDeliveriesRequest(endpoint_id=endpoint, state=state, page_size=500),
        timeout=10,
    )
    return list(answer.deliveries)


def test_every_event_arrives_in_order_through_an_outage_and_dead_ones_are_replayed(
    platform: EmbeddedPlatform, receiver: Receiver
) -> None:
    client = Client.from_home(platform.home)
    with pytest.raises(grpc.RpcError) as refused:
        client.webhooks.CreateEndpoint(
            webhooks_pb2.CreateEndpointRequest(url=f"http://127.0.0.1:{receiver.port}/main"),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = error_of(refused.value)
    assert error.reason == "INVALID_WEBHOOK_URL" and "https://" in str(error)
    assert [name for name, _ in error.field_violations] == ["url"]

    main = _cli_json(platform, "add", receiver.url("/main"), "--description", "main")
    main_id = main["endpoint"]["endpoint_id"]
    assert main["secret"].startswith("whsec_")
    # Another reseller's endpoint, which refuses every event until its deliveries are dead.
    other = platform.cli("admin", "create-reseller", "Toko Penolak", "--json")
    assert other.code == 0, other.stderr
    other_key = str(other.json()["api_key"])
    other_client = Client.from_home(platform.home, api_key=other_key)
    other_client.buy(5)
    second = _cli_json(platform, "add", receiver.url("/second"), api_key=other_key)
    second_id = second["endpoint"]["endpoint_id"]
    receiver.trust(main["secret"], second["secret"])
    refused_jobs = [_submit(other_client, f"refused {n}") for n in range(2)]

    # Down: the receiver is not running yet.
    singles = [_submit(client, f"single {n}") for n in range(3)]
    batch_id, batch_jobs = _batch(client, "webhook batch", 2)
    jobs = singles + batch_jobs
    _until(
        "attempts refused while the receiver is down",
        lambda: any(d.attempts >= 2 for d in _deliveries(client, main_id)),
    )
    receiver.modes(main="slow", second="fail")
    receiver.start()
    time.sleep(1.5)
    receiver.modes(main="fail", second="fail")
    time.sleep(1.5)
    assert receiver.accepted("main") == [], "nothing accepted during the outage"
    receiver.modes(main="ok", second="fail")
    for job_id in jobs:
        assert client.wait(job_id, 60).state == stamping_pb2.JOB_STATE_DONE

    expected = {("job.done", job_id) for job_id in jobs} | {("batch.done", batch_id)}

    def arrived() -> set[tuple[str, str]]:
        return {
            (r["type"], r["data"].get("job_id") or r["data"].get("batch_id", ""))
            for r in receiver.accepted("main")
        }

    _until("every event at the main endpoint", lambda: expected <= arrived())
    accepted = receiver.accepted("main")
    first: dict[tuple[str, str], int] = {}
    for index, request in enumerate(accepted):
        subject = request["data"].get("job_id") or request["data"]["batch_id"]
        first.setdefault((request["type"], subject), index)
    for job_id in batch_jobs:
        assert first[("job.done", job_id)] < first[("batch.done", batch_id)]
    done = next(r for r in accepted if r["type"] == "batch.done")["data"]
    assert (done["total"], done["accepted"], done["done"], done["failed"]) == (2, 2, 2, 0)
    main_requests = [r for r in receiver.requests() if r["path"] == "/main" and r["valid"]]
    ids = {(r["type"], r["headers"]["webhook-id"]) for r in main_requests}
    assert len(ids) == len(expected), "one webhook-id per event, the same on every attempt"
    # The main endpoint failed (down, slow, 500) and recovered before its last attempt.
    _until(  # the receiver logs a request before its answer is back in the delivery log
        "the main endpoint's log all DELIVERED",
        lambda: all(d.state == webhooks_pb2.DELIVERED for d in _deliveries(client, main_id)),
    )
    logged = _deliveries(client, main_id)
    assert len(logged) == len(expected)
    assert max(d.attempts for d in logged) >= 3
    assert not any(r["data"].get("job_id") in refused_jobs for r in main_requests)

    # The other reseller's endpoint refused everything: dead, then replayed.
    def dead() -> list[webhooks_pb2.Delivery]:
        return _deliveries(other_client, second_id, webhooks_pb2.DEAD)

    _until("the refusing endpoint's deliveries in the dead-letter view", lambda: len(dead()) == 2)
    listed = _cli_json(platform, "dead", "--endpoint", second_id, api_key=other_key)
    assert {d["subject"] for d in listed["deliveries"]} == set(refused_jobs)
    assert all(d["attempts"] == 20 and d["last_status"] == 500 for d in listed["deliveries"])
    assert _deliveries(client, second_id) == [], "a reseller sees only its own deliveries"
    receiver.modes(main="ok", second="ok")
    replay = platform.cli("webhooks", "replay", "--endpoint", second_id, api_key=other_key)
    assert replay.code == 0 and "replaying 2" in replay.stdout, replay.stderr
    _until(
        "replayed deliveries accepted",
        lambda: {r["data"]["job_id"] for r in receiver.accepted("second")} == set(refused_jobs),
    )
    refused_ids = {
        r["headers"]["webhook-id"]
        for r in receiver.requests()
        if r["path"] == "/second" and r["mode"] == "fail"
    }
    replayed_ids = {r["headers"]["webhook-id"] for r in receiver.accepted("second")}
    assert replayed_ids == refused_ids, "a replay keeps the webhook-id, so receivers deduplicate"
    assert dead() == []


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(
    platform: EmbeddedPlatform, receiver: Receiver
) -> None:
    client = Client.from_home(platform.home)
    created = client.webhooks.CreateEndpoint(
        webhooks_pb2.CreateEndpointRequest(url=receiver.url("/rotated")), timeout=10
    )
    endpoint_id, old = created.endpoint.endpoint_id, created.secret
    rotated = _cli_json(platform, "rotate", endpoint_id, "--overlap", "1h")
    new = rotated["secret"]
    assert new != old and "previous_secret_expires_at" in rotated["endpoint"]
    receiver.trust(new)
    job_id = _submit(client, "rotation")
    _until(
        "the event at the rotated endpoint",
        lambda: any(r["data"].get("job_id") == job_id for r in receiver.accepted("rotated")),
    )
    request = next(r for r in receiver.accepted("rotated") if r["data"].get("job_id") == job_id)
    body, headers = request["body"].encode(), request["headers"]
    assert len(headers["webhook-signature"].split()) == 2
    assert verify(body, headers, [old])["data"]["job_id"] == job_id
    assert verify(body, headers, [new])["data"]["job_id"] == job_id

    def listed() -> set[str]:
        answer = client.webhooks.ListEndpoints(webhooks_pb2.ListEndpointsRequest(), timeout=10)
        return {endpoint.endpoint_id for endpoint in answer.endpoints}

    assert endpoint_id in listed()
    client.webhooks.DeleteEndpoint(
        webhooks_pb2.DeleteEndpointRequest(endpoint_id=endpoint_id), timeout=10
    )
    assert endpoint_id not in listed()


def test_the_example_verifier_rejects_forged_and_stale_requests(
    platform: EmbeddedPlatform, receiver: Receiver
) -> None:
    genuine = next(r for r in receiver.requests() if r["valid"] and r["path"] == "/main")
    body, headers = genuine["body"].encode(), genuine["headers"]
    main_secret = next(s for s in receiver.known if _verifies(body, headers, s))
    sent = int(headers["webhook-timestamp"])
    assert verify(body, headers, [main_secret], now=sent + 60)["type"] == genuine["type"]
    with pytest.raises(InvalidWebhook, match="outside"):
        verify(body, headers, [main_secret], now=sent + 600)
    with pytest.raises(InvalidWebhook, match="no signature"):
        verify(body.replace(b"job", b"jab", 1), headers, [main_secret], now=sent)
    with pytest.raises(InvalidWebhook, match="no signature"):
        verify(body, headers, ["whsec_" + "A" * 43 + "="], now=sent)
    with pytest.raises(InvalidWebhook, match="missing"):
        verify(body, {k: v for k, v in headers.items() if k != "webhook-signature"}, [main_secret])
    # Over the wire: the receiver answers a forged request 400 and records it as invalid.
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=str(receiver.directory / "tls" / "ca.crt"))
    forged = urllib.request.Request(
        receiver.url("/main"),
        data=body,
        headers={
            **headers,
            "webhook-signature": "v1," + "A" * 44,
            "webhook-timestamp": str(int(time.time())),
        },
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(forged, context=context, timeout=10)
    assert answer.value.code == 400


def _verifies(body: bytes, headers: dict[str, str], secret: str) -> bool:
    try:
        verify(body, headers, [secret], now=int(headers["webhook-timestamp"]))
    except InvalidWebhook:
        return False
    return True
