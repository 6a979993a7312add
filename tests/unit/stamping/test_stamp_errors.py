"""Bad requests and hostile files end in the error tree, with messages that say what to do."""

from __future__ import annotations

import contextlib
import random
import time

import pytest
from pyhanko.sign.fields import MDPPerm

from meterai_stamping.engine import (
    CertifiedDocument,
    CertifiedNoChanges,
    CertifiedNoNewFields,
    DocumentTooLarge,
    EncryptedPdf,
    InvalidRequest,
    Limits,
    MalformedPdf,
    NotAPdf,
    PageOutOfRange,
    Rect,
    RectOutsidePage,
    RectTooSmall,
    StampError,
    check_stamped,
    inspect,
    prepare,
)
from meterai_stamping.engine.bounds import MAX_NESTING
from meterai_verify.pdf_check import check_pdf
from tests.unit.stamping.samples import (
    CORPUS,
    SEAL,
    SIGNING_TIME,
    PageSpec,
    assemble_pdf,
    build_pdf,
    certify,
    prepare_seal,
    session_signer,
    stamp_and_sign,
)

_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"


def test_non_pdf_bytes_are_not_a_pdf() -> None:
    with pytest.raises(NotAPdf):
        prepare_seal(b"PK\x03\x04 this is a zip file")
    with pytest.raises(NotAPdf):
        inspect(b"")


def test_page_number_beyond_the_document_names_both_numbers() -> None:
    with pytest.raises(PageOutOfRange, match="page 7 requested; the document has 4 pages"):
        prepare_seal((CORPUS / "pdflatex-4-pages.pdf").read_bytes(), page=7)
    with pytest.raises(PageOutOfRange):
        prepare_seal(build_pdf(), page=0)


def test_rectangle_off_the_page_is_refused() -> None:
    with pytest.raises(RectOutsidePage, match=r"595\.0 x 842\.0 pt"):
        prepare_seal(build_pdf(), rect=Rect(500, 40, 680, 112))


def test_rectangle_below_the_minimum_states_the_minimum() -> None:
    with pytest.raises(RectTooSmall, match=r"at least 40\.7 pt"):
        prepare_seal(build_pdf(), rect=Rect(40, 40, 140, 70))


def test_page_smaller_than_the_seal_is_refused_as_too_small() -> None:
    tiny = (CORPUS / "imagemagick-images.pdf").read_bytes()
    with pytest.raises(RectTooSmall, match="too small for the seal"):
        prepare_seal(tiny, rect=Rect(0, 0, 3, 3))


def test_square_seal_on_the_60pt_box_fits() -> None:
    prepared = prepare_seal((CORPUS / "box.pdf").read_bytes(), rect=Rect(0, 0, 60, 60))
    assert prepared.page_count == 1


def test_inverted_rectangle_and_bad_sizes_are_invalid_requests() -> None:
    with pytest.raises(InvalidRequest):
        prepare_seal(build_pdf(), rect=Rect(100, 100, 50, 50))
    with pytest.raises(InvalidRequest):
        prepare(
            build_pdf(),
            page=1,
            rect=Rect(40, 40, 220, 112),
            seal=SEAL,
            signature_size=0,
            signing_time=SIGNING_TIME,
            reason="x",
        )


def test_limits_on_bytes_and_pages_are_resource_exhausted() -> None:
    pdf = build_pdf([PageSpec()] * 3)
    with pytest.raises(DocumentTooLarge) as too_big:
        inspect(pdf, limits=Limits(max_bytes=100))
    assert too_big.value.code == "RESOURCE_EXHAUSTED"
    with pytest.raises(DocumentTooLarge, match="3 pages; the limit is 2"):
        inspect(pdf, limits=Limits(max_pages=2))


@pytest.mark.parametrize(
    ("name", "password", "says"),
    [
        ("libreoffice-writer-password.pdf", None, "protected by a password"),
        ("r2-user-password.pdf", "wrong", "password is wrong"),
        ("crazyones-encrypted-256.pdf", "", "protected by a password"),
        ("crazyones-encrypted-256.pdf", "Password", "password is wrong"),
    ],
)
def test_encrypted_documents_are_refused_with_a_reason(
    name: str, password: str | None, says: str
) -> None:
    with pytest.raises(EncryptedPdf, match=says) as caught:
        prepare(
            (CORPUS / name).read_bytes(),
            page=1,
            rect=Rect(40, 40, 220, 112),
            seal=SEAL,
            signature_size=8192,
            signing_time=SIGNING_TIME,
            reason="x",
            password=password,
        )
    assert caught.value.code == "FAILED_PRECONDITION"
    assert "password field" in caught.value.message and "--password" in caught.value.message


@pytest.mark.parametrize(
    ("permission", "error", "says"),
    [
        (MDPPerm.NO_CHANGES, CertifiedNoChanges, r"'no changes allowed' \(DocMDP P=1\)"),
        (
            MDPPerm.FILL_FORMS,
            CertifiedNoNewFields,
            r"certified by its author and only allows filling in its existing fields "
            r"\(DocMDP P=2\)",
        ),
        (
            MDPPerm.ANNOTATE,
            CertifiedNoNewFields,
            r"only allows filling in its existing fields and adding comments \(DocMDP P=3\)",
        ),
    ],
)
def test_certified_documents_are_refused_by_prepare_and_inspect(
    permission: MDPPerm, error: type[CertifiedDocument], says: str
) -> None:
    certified = certify(build_pdf(), permission)
    with pytest.raises(error, match=says) as caught:
        prepare_seal(certified)
    assert caught.value.code == "FAILED_PRECONDITION"
    assert "invalidat" in caught.value.message
    with pytest.raises(error):
        inspect(certified)


@pytest.mark.parametrize("permission", [MDPPerm.NO_CHANGES, MDPPerm.FILL_FORMS])
def test_certified_documents_are_refused_before_the_page_or_seal_is_looked_at(
    permission: MDPPerm,
) -> None:
    certified = certify(build_pdf(), permission)
    with pytest.raises(CertifiedDocument):
        prepare_seal(certified, page=99)
    with pytest.raises(CertifiedDocument):
        prepare_seal(certified, rect=Rect(10_000, 10_000, 10_200, 10_100))


def test_certification_without_a_permission_level_counts_as_form_filling_only() -> None:
    pdf = assemble_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R /Perms << /DocMDP 4 0 R >> >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: _PAGE,
            4: b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached "
            b"/Reference [<< /Type /SigRef /TransformMethod /DocMDP "
            b"/TransformParams << /Type /TransformParams /V /1.2 >> >>] >>",
        }
    )
    with pytest.raises(CertifiedNoNewFields, match="P=2"):
        prepare_seal(pdf)


def test_page_tree_that_loops_on_itself_is_malformed() -> None:
    pdf = assemble_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
        }
    )
    with pytest.raises(MalformedPdf, match="loops"):
        prepare_seal(pdf)
    with pytest.raises(MalformedPdf):
        inspect(pdf)


def test_page_count_that_lies_is_malformed() -> None:
    pdf = assemble_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 3 >>",
            3: _PAGE,
        }
    )
    with pytest.raises(MalformedPdf):
        prepare_seal(pdf, page=3)
    with pytest.raises(MalformedPdf):
        inspect(pdf)


def test_prev_chain_that_loops_is_refused_as_malformed() -> None:
    base = build_pdf()
    at = len(base)
    looped = base + (
        b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 6 /Root 1 0 R /Prev %d >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (at, at)
    )
    with pytest.raises(MalformedPdf, match="point back to each other") as caught:
        prepare_seal(looped)
    assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(MalformedPdf):
        inspect(looped)


def test_a_trailer_size_no_file_can_hold_is_refused() -> None:
    absurd = build_pdf().replace(b"/Size 6", b"/Size 1000000000")
    with pytest.raises(MalformedPdf, match="declares 1,000,000,000 objects") as caught:
        prepare_seal(absurd)
    assert caught.value.code == "INVALID_ARGUMENT"


def _nested_page(depth: int) -> bytes:
    return assemble_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /X "
            + b"[" * depth
            + b"]" * depth
            + b" >>",
        }
    )


@pytest.mark.parametrize("depth", [100, 900, 50_000])
def test_absurdly_nested_objects_are_refused_quickly(depth: int) -> None:
    started = time.monotonic()
    with pytest.raises(MalformedPdf, match=f"more than {MAX_NESTING} levels deep") as caught:
        prepare_seal(_nested_page(depth))
    assert caught.value.code == "INVALID_ARGUMENT"
    assert time.monotonic() - started < 2


def test_nesting_within_the_bound_is_stamped_and_verifiable() -> None:
    check_stamped(stamp_and_sign(_nested_page(MAX_NESTING - 4)))


def test_every_truncation_of_a_document_is_refused_or_stamped_verifiably() -> None:
    pdf = build_pdf(xref="stream")
    outcomes = [_refused_or_verifiable(pdf[:cut]) for cut in range(0, len(pdf), 7)]
    assert "refused" in outcomes


def test_random_byte_corruption_is_refused_or_stamped_verifiably() -> None:
    pdf = (CORPUS / "minimal-document.pdf").read_bytes()
    rng = random.Random(20250102)
    outcomes = []
    for _ in range(150):
        corrupted = bytearray(pdf)
        for _ in range(rng.randint(1, 8)):
            corrupted[rng.randrange(len(corrupted))] = rng.randrange(256)
        outcomes.append(_refused_or_verifiable(bytes(corrupted)))
    assert {"refused", "stamped"} <= set(outcomes)


def _refused_or_verifiable(pdf: bytes) -> str:
    """Refused with a message and a gRPC code, or stamped into a file that passes the
    platform's own check and its verifier: never a paid stamp nobody can verify."""
    try:
        signed = stamp_and_sign(pdf)
    except StampError as error:
        assert error.message and error.code in _CODES
        with contextlib.suppress(StampError):
            inspect(pdf)
        return "refused"
    assert signed.startswith(pdf)
    check_stamped(signed)
    verdict = check_pdf(signed, [session_signer().certificate.dump()])
    assert [check.ok for check in verdict.signatures][-1:] == [True], verdict
    return "stamped"


_CODES = {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED"}
