"""What every error carries besides its message: a stable reason derived from the error, the
request field it is about, retry advice and quota subjects, packed as ``google.rpc`` details."""

from __future__ import annotations

import pytest
from google.rpc import error_details_pb2, status_pb2

from meterai.stamping.v1 import stamping_pb2
from meterai_common.grpc_errors import (
    PUSHBACK_HEADER,
    ErrorDetails,
    RequestError,
    details_of,
    reason_of,
    rich_status,
)


class NotAPdf(Exception):
    code = "INVALID_ARGUMENT"


class CertifiedNoNewFields(Exception):
    code = "FAILED_PRECONDITION"


class Busy(Exception):
    code = "RESOURCE_EXHAUSTED"
    reason = "PLATFORM_BUSY"
    pushback_ms = 750
    quota_subject = "reseller:submissions_per_second"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NotAPdf("x"), "NOT_A_PDF"),
        (CertifiedNoNewFields("x"), "CERTIFIED_NO_NEW_FIELDS"),
        (Busy("x"), "PLATFORM_BUSY"),
        (RequestError("INVALID_ARGUMENT", "x"), "INVALID_ARGUMENT"),
        (RequestError("NOT_FOUND", "x", reason="BATCH_NOT_FOUND"), "BATCH_NOT_FOUND"),
    ],
)
def test_the_reason_is_the_errors_own_or_its_class_name(error: Exception, reason: str) -> None:
    assert reason_of(error) == reason


def test_a_validation_message_that_starts_with_a_field_names_that_field() -> None:
    request = stamping_pb2.SubmitDocumentRequest()
    error = RequestError("INVALID_ARGUMENT", "placement.page must be 1 or more, got 0")
    assert details_of(error, request).field_violations == [
        ("placement.page", "placement.page must be 1 or more, got 0")
    ]
    unknown = RequestError("INVALID_ARGUMENT", "nonsense.field is wrong")
    assert details_of(unknown, request).field_violations == []


def test_a_servicers_map_names_the_field_of_errors_that_speak_of_the_document() -> None:
    found = details_of(NotAPdf("these bytes are no PDF"), None, {"NOT_A_PDF": "pdf"})
    assert found.field_violations == [("pdf", "these bytes are no PDF")]


def test_a_refusal_to_come_back_carries_retry_info_the_trailer_and_its_quota() -> None:
    details = details_of(Busy("busy"))
    status = rich_status("RESOURCE_EXHAUSTED", "busy", details)
    trailers = dict(status.trailing_metadata)
    assert trailers[PUSHBACK_HEADER] == "750"
    decoded = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert decoded.message == "busy"
    kinds = {any_.type_url.rsplit(".", 1)[-1]: any_ for any_ in decoded.details}
    retry = error_details_pb2.RetryInfo()
    kinds["RetryInfo"].Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == 750
    quota = error_details_pb2.QuotaFailure()
    kinds["QuotaFailure"].Unpack(quota)
    assert quota.violations[0].subject == "reseller:submissions_per_second"


def test_an_error_without_advice_has_no_pushback_trailer() -> None:
    status = rich_status("NOT_FOUND", "no job", ErrorDetails("JOB_NOT_FOUND"))
    assert PUSHBACK_HEADER not in dict(status.trailing_metadata)
