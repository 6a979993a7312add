"""What a submission must satisfy before any PDF work or quota is touched."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from meterai_stamping.domain.jobs import (
    DocumentFacts,
    InvalidSubmission,
    Placement,
    SubmitDocument,
    seal_reason,
    submission_fingerprint,
    validate_submission,
    verify_url,
)

GOOD = SubmitDocument(
    reseller_id="r1",
    owner_id="r1",
    pdf=b"%PDF-1.7 ...",
    placement=Placement(1, 400, 50, 520, 170),
    facts=DocumentFacts("Surat Lamaran", "001", date(2024, 9, 6), 0),
    idempotency_key="key-1",
    filename="letter.pdf",
)


def test_a_complete_submission_passes() -> None:
    validate_submission(GOOD)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"idempotency_key": ""}, "idempotency_key is required"),
        ({"pdf": b""}, "pdf is empty"),
        ({"placement": Placement(0, 1, 1, 100, 100)}, "page must be 1 or more"),
        ({"placement": Placement(1, 100, 1, 50, 100)}, "x1 > x0"),
        ({"facts": DocumentFacts(" ")}, "document_type is required"),
        ({"facts": DocumentFacts("Kontrak", document_value_idr=-5)}, "must not be negative"),
        ({"filename": "../../etc/passwd"}, "plain file name"),
    ],
)
def test_incomplete_submissions_are_refused_with_the_reason(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidSubmission, match=message) as raised:
        validate_submission(replace(GOOD, **change))  # type: ignore[arg-type]
    assert raised.value.code == "INVALID_ARGUMENT"


def test_the_fingerprint_tells_a_replay_from_a_different_request() -> None:
    assert submission_fingerprint(GOOD) == submission_fingerprint(replace(GOOD, filename="x.pdf"))
    assert submission_fingerprint(GOOD) != submission_fingerprint(replace(GOOD, pdf=b"%PDF-1.4"))
    moved = replace(GOOD, placement=Placement(2, 400, 50, 520, 170))
    assert submission_fingerprint(GOOD) != submission_fingerprint(moved)


def test_the_signature_reason_and_qr_url_name_the_serial() -> None:
    assert seal_reason("ABCDEFGHJK0123456789XY") == "e-Meterai ABCDEFGHJK0123456789XY"
    assert verify_url("https://v.example/v/", "S1") == "https://v.example/v/S1"
