"""The gRPC API as an integrator in any language meets it, over real TLS channels: servers
describe themselves (reflection), every error carries ``google.rpc`` details a client can act
on without parsing English, a key works as a Bearer token, a job can be cancelled until it is
signed, and nothing about other resellers' resources leaks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

import meterai_quota as quota
from meterai.quota.v1 import quota_pb2
from meterai.stamping.v1 import stamping_pb2
from meterai.verify.v1 import verify_pb2
from meterai_common.db import run_in_transaction
from meterai_common.grpc_errors import DOMAIN
from meterai_stamping.bootstrap import MAX_CONCURRENT_CALLS
from tests.integration.api.conftest import ApiWorld

PUBLIC_SERVICES = {
    "quota": "meterai.quota.v1.QuotaService",
    "stamping": "meterai.stamping.v1.StampingService",
    "verify": "meterai.verify.v1.VerificationService",
}


def _refusal(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value


def _details(error: grpc.RpcError) -> dict[str, Any]:
    """The ``google.rpc`` details of a failed call, by type."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no grpc-status-details-bin on {error.code()}: {error.details()}"
    assert status.message == error.details()
    found: dict[str, Any] = {}
    for packed in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.QuotaFailure,
            error_details_pb2.RetryInfo,
        ):
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    info = found["ErrorInfo"]
    assert info.domain == DOMAIN and info.reason
    return found


def _reason(error: grpc.RpcError) -> str:
    return str(_details(error)["ErrorInfo"].reason)


def _fields(error: grpc.RpcError) -> list[str]:
    return [v.field for v in _details(error)["BadRequest"].field_violations]


# -- reflection ----------------------------------------------------------------------------
@pytest.mark.parametrize("service", sorted(PUBLIC_SERVICES))
def test_reflection_lists_the_public_service_and_describes_it(
    api_world: ApiWorld, service: str
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(api_world.channel(service))
    listing = next(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in listing.list_services_response.service}
    assert PUBLIC_SERVICES[service] in names
    assert "grpc.health.v1.Health" in names
    described = next(
        stub.ServerReflectionInfo(
            iter(
                [
                    reflection_pb2.ServerReflectionRequest(
                        file_containing_symbol=PUBLIC_SERVICES[service]
                    )
                ]
            )
        )
    )
    assert described.file_descriptor_response.file_descriptor_proto


# -- rich errors ---------------------------------------------------------------------------
def test_a_missing_field_names_it_in_a_bad_request(api_world: ApiWorld) -> None:
    request = api_world.submit_request()
    request.ClearField("placement")
    error = _refusal(
        lambda: api_world.stamping_stub().SubmitDocument(
            request, metadata=api_world.reseller.auth, timeout=30
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["placement"]


def test_a_rectangle_off_the_page_names_the_rectangle(api_world: ApiWorld) -> None:
    request = api_world.submit_request()
    request.placement.rect.x1 = 5000
    error = _refusal(
        lambda: api_world.stamping_stub().SubmitDocument(
            request, metadata=api_world.reseller.auth, timeout=30
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(error) == "RECT_OUTSIDE_PAGE"
    assert _fields(error) == ["placement.rect"]


def test_not_a_pdf_names_the_pdf_field(api_world: ApiWorld) -> None:
    request = api_world.submit_request()
    request.pdf = b"hello, not a document"
    error = _refusal(
        lambda: api_world.stamping_stub().SubmitDocument(
            request, metadata=api_world.reseller.auth, timeout=30
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (_reason(error), _fields(error)) == ("NOT_A_PDF", ["pdf"])


def test_no_quota_is_a_quota_failure_with_one_wording_whichever_check_finds_it(
    api_world: ApiWorld,
) -> None:
    def work(conn: Any) -> str:
        reseller = quota.create_reseller(conn, f"Toko Satu {uuid.uuid4().hex[:8]}")
        order = quota.purchase(conn, reseller.id, 1, "one")
        quota.confirm_payment(conn, order.id, f"pay-one-{reseller.id}", order.total_idr)
        return quota.issue_api_key(conn, reseller.id)

    auth = (("x-api-key", run_in_transaction(api_world.db, work)),)
    stub = api_world.stamping_stub()
    stub.SubmitDocument(api_world.submit_request(), metadata=auth, timeout=30)
    # The first refusal comes from the hold (the early check still saw one unit), the second
    # from the early check: the same words and details.
    refusals = [
        _refusal(lambda: stub.SubmitDocument(api_world.submit_request(), metadata=auth, timeout=30))
        for _ in range(2)
    ]
    for error in refusals:
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
        details = _details(error)
        assert details["ErrorInfo"].reason == "INSUFFICIENT_QUOTA"
        (violation,) = details["QuotaFailure"].violations
        assert violation.subject == "reseller:stamp_quota"
    assert refusals[0].details() == refusals[1].details()


def test_a_busy_reseller_is_told_when_to_come_back(api_world: ApiWorld) -> None:
    admission = api_world.servicer._admission
    admission._take_token(api_world.reseller.reseller_id)
    admission._buckets[api_world.reseller.reseller_id].tokens = -1000.0  # 5 s of refill owed
    error = _refusal(
        lambda: api_world.stamping_stub().SubmitDocument(
            api_world.submit_request(), metadata=api_world.reseller.auth, timeout=30
        )
    )
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = _details(error)
    assert details["ErrorInfo"].reason == "RESELLER_RATE_LIMIT"
    assert details["RetryInfo"].retry_delay.ToMilliseconds() > 0
    assert details["QuotaFailure"].violations[0].subject == "reseller:submissions_per_second"
    pushback = dict(error.trailing_metadata() or ())["grpc-retry-pushback-ms"]
    assert int(pushback) == details["RetryInfo"].retry_delay.ToMilliseconds()


def test_an_unknown_key_and_a_missing_key_have_stable_reasons(api_world: ApiWorld) -> None:
    stub = api_world.quota_stub()
    missing = _refusal(lambda: stub.GetBalance(quota_pb2.GetBalanceRequest(), timeout=10))
    unknown = _refusal(
        lambda: stub.GetBalance(
            quota_pb2.GetBalanceRequest(), metadata=(("x-api-key", "mtk_nope"),), timeout=10
        )
    )
    assert missing.code() is unknown.code() is grpc.StatusCode.UNAUTHENTICATED
    assert _reason(missing) == "MISSING_API_KEY"
    assert _reason(unknown) == "UNAUTHENTICATED"


def test_a_reseller_calling_an_operator_method_is_permission_denied(api_world: ApiWorld) -> None:
    error = _refusal(
        lambda: api_world.quota_stub().ListApiKeys(
            quota_pb2.ListApiKeysRequest(), metadata=api_world.reseller.auth, timeout=10
        )
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert _reason(error) == "PERMISSION_DENIED"


# -- ids and other resellers' resources ------------------------------------------------------
def test_another_resellers_order_is_not_found_in_the_words_of_a_missing_one(
    api_world: ApiWorld,
) -> None:
    stub = api_world.quota_stub()
    order = stub.PurchaseQuota(
        quota_pb2.PurchaseQuotaRequest(quantity=1, idempotency_key=str(uuid.uuid4())),
        metadata=api_world.other.auth,
        timeout=10,
    )
    theirs = _refusal(
        lambda: stub.GetOrder(
            quota_pb2.GetOrderRequest(order_id=order.order_id),
            metadata=api_world.reseller.auth,
            timeout=10,
        )
    )
    missing_id = str(uuid.uuid4())
    missing = _refusal(
        lambda: stub.GetOrder(
            quota_pb2.GetOrderRequest(order_id=missing_id),
            metadata=api_world.reseller.auth,
            timeout=10,
        )
    )
    cancel = _refusal(
        lambda: stub.CancelOrder(
            quota_pb2.CancelOrderRequest(order_id=order.order_id),
            metadata=api_world.reseller.auth,
            timeout=10,
        )
    )
    assert theirs.code() is missing.code() is cancel.code() is grpc.StatusCode.NOT_FOUND
    assert (
        theirs.details()
        == cancel.details()
        == missing.details().replace(missing_id, order.order_id)
    )
    assert _reason(theirs) == _reason(missing) == "ORDER_NOT_FOUND"


def test_another_resellers_job_is_not_found(api_world: ApiWorld) -> None:
    stub = api_world.stamping_stub()
    job = stub.SubmitDocument(api_world.submit_request(), metadata=api_world.other.auth, timeout=30)
    auth = api_world.reseller.auth
    refusals = [
        _refusal(lambda: stub.GetJob(stamping_pb2.GetJobRequest(job_id=job.job_id), metadata=auth)),
        _refusal(
            lambda: stub.CancelJob(stamping_pb2.CancelJobRequest(job_id=job.job_id), metadata=auth)
        ),
    ]
    for error in refusals:
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert _reason(error) == "JOB_NOT_FOUND"


@pytest.mark.parametrize("malformed", ["", "x" * 100_000, "../../etc/passwd", "123"])
def test_a_malformed_id_is_invalid_and_never_echoed(api_world: ApiWorld, malformed: str) -> None:
    calls = [
        lambda: api_world.stamping_stub().GetJob(
            stamping_pb2.GetJobRequest(job_id=malformed), metadata=api_world.reseller.auth
        ),
        lambda: api_world.quota_stub().GetOrder(
            quota_pb2.GetOrderRequest(order_id=malformed), metadata=api_world.reseller.auth
        ),
    ]
    for call in calls:
        error = _refusal(call)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert _reason(error) == "MALFORMED_ID"
        assert len(error.details() or "") < 200
        assert not malformed or malformed not in (error.details() or "")
        assert _fields(error)[0] in ("job_id", "order_id")


# -- Bearer ----------------------------------------------------------------------------------
def test_a_key_is_accepted_as_a_bearer_token(api_world: ApiWorld) -> None:
    bearer = (("authorization", f"Bearer {api_world.reseller.api_key}"),)
    balance = api_world.quota_stub().GetBalance(
        quota_pb2.GetBalanceRequest(), metadata=bearer, timeout=10
    )
    assert balance.available > 0
    job = api_world.stamping_stub().SubmitDocument(
        api_world.submit_request(), metadata=bearer, timeout=30
    )
    assert job.job_id
    wrong = _refusal(
        lambda: api_world.quota_stub().GetBalance(
            quota_pb2.GetBalanceRequest(), metadata=(("authorization", "Bearer mtk_x"),)
        )
    )
    assert wrong.code() is grpc.StatusCode.UNAUTHENTICATED


# -- CancelJob -------------------------------------------------------------------------------
def _available(api_world: ApiWorld) -> int:
    balance = api_world.quota_stub().GetBalance(
        quota_pb2.GetBalanceRequest(), metadata=api_world.reseller.auth, timeout=10
    )
    return int(balance.available)


def test_cancelling_a_job_not_signed_yet_refunds_it_and_a_late_signature_changes_nothing(
    api_world: ApiWorld,
) -> None:
    stub = api_world.stamping_stub()
    before = _available(api_world)
    job = stub.SubmitDocument(
        api_world.submit_request(), metadata=api_world.reseller.auth, timeout=30
    )
    assert _available(api_world) == before - 1
    cancelled = stub.CancelJob(
        stamping_pb2.CancelJobRequest(job_id=job.job_id), metadata=api_world.reseller.auth
    )
    assert cancelled.state == stamping_pb2.JOB_STATE_FAILED
    assert cancelled.failure_code == "CANCELLED" and cancelled.refunded
    assert _available(api_world) == before
    api_world.sign(job.job_id)  # the signing tier answers anyway
    after = stub.GetJob(
        stamping_pb2.GetJobRequest(job_id=job.job_id), metadata=api_world.reseller.auth
    )
    assert after.state == stamping_pb2.JOB_STATE_FAILED
    assert _available(api_world) == before
    again = stub.CancelJob(
        stamping_pb2.CancelJobRequest(job_id=job.job_id), metadata=api_world.reseller.auth
    )
    assert again.state == stamping_pb2.JOB_STATE_FAILED


def test_a_signed_job_cannot_be_cancelled_and_says_so(api_world: ApiWorld) -> None:
    stub = api_world.stamping_stub()
    job = stub.SubmitDocument(
        api_world.submit_request(), metadata=api_world.reseller.auth, timeout=30
    )
    api_world.sign(job.job_id)
    error = _refusal(
        lambda: stub.CancelJob(
            stamping_pb2.CancelJobRequest(job_id=job.job_id), metadata=api_world.reseller.auth
        )
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(error) == "JOB_ALREADY_SIGNED"
    assert "already signed" in (error.details() or "")


# -- verification ----------------------------------------------------------------------------
def test_a_tampered_document_is_not_blamed_on_the_signer(api_world: ApiWorld) -> None:
    stamped = bytearray(api_world.stamped())
    genuine = api_world.verify_stub().VerifyDocument(
        verify_pb2.VerifyDocumentRequest(pdf=bytes(stamped)), timeout=30
    )
    assert genuine.genuine, genuine
    at = stamped.index(b"Perjanjian")
    stamped[at : at + 10] = b"Penipuan!!"
    tampered = api_world.verify_stub().VerifyDocument(
        verify_pb2.VerifyDocumentRequest(pdf=bytes(stamped)), timeout=30
    )
    (seal,) = tampered.seals
    assert not tampered.genuine
    assert "altered" in seal.problem
    assert "issuer" not in seal.problem, seal.problem


# -- overload --------------------------------------------------------------------------------
def test_a_burst_of_a_thousand_calls_gets_only_oks_or_refusals_with_retry_advice(
    api_world: ApiWorld,
) -> None:
    stub = api_world.stamping_stub()
    request = api_world.submit_request()
    calls = [
        stub.SubmitDocument.future(
            stamping_pb2.SubmitDocumentRequest(
                pdf=request.pdf,
                placement=request.placement,
                metadata=request.metadata,
                idempotency_key=str(uuid.uuid4()),
            ),
            metadata=api_world.reseller.auth,
            timeout=120,
        )
        for _ in range(1000)
    ]
    outcomes: dict[str, int] = {}
    for call in calls:
        try:
            call.result()
            outcomes["OK"] = outcomes.get("OK", 0) + 1
        except grpc.RpcError as error:
            assert error.code() in (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.UNAVAILABLE,
            ), (error.code(), error.details())
            details = _details(error)
            assert details["RetryInfo"].retry_delay.ToMilliseconds() > 0, error.details()
            outcomes[details["ErrorInfo"].reason] = outcomes.get(details["ErrorInfo"].reason, 0) + 1
    assert outcomes.get("OK", 0) > 0
    assert sum(outcomes.values()) == 1000
    print("burst outcomes:", outcomes)


def test_the_server_call_limit_refuses_with_retry_advice_not_grpcs_bare_message(
    api_world: ApiWorld,
) -> None:
    """Open watches hold their calls; past the server's limit, calls are refused at once with
    a RetryInfo, where gRPC's own limit said only "Concurrent RPC limit exceeded!"."""
    stub = api_world.stamping_stub()
    job = stub.SubmitDocument(
        api_world.submit_request(), metadata=api_world.reseller.auth, timeout=30
    )
    watches = [
        stub.WatchJob(
            stamping_pb2.WatchJobRequest(job_id=job.job_id),
            metadata=api_world.reseller.auth,
            timeout=30,
        )
        for _ in range(MAX_CONCURRENT_CALLS + 20)
    ]
    try:
        time.sleep(3)
        refused = [watch for watch in watches if watch.done()]
        assert len(refused) >= 20
        for error in refused:
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
            details = _details(error)
            assert details["ErrorInfo"].reason == "SERVER_CONCURRENCY_LIMIT"
            assert details["RetryInfo"].retry_delay.ToMilliseconds() > 0
    finally:
        for watch in watches:
            watch.cancel()
