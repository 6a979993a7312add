"""Stamped, signed documents pass pdfsig, pyHanko and qpdf, also beside earlier signatures."""

from __future__ import annotations

from io import BytesIO

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation.status import SignatureCoverageLevel

from meterai_stamping.engine import CertifiedNoNewFields, Rect, Seal
from tests.integration.stamping.validators import pyhanko_statuses, run_pdfsig, run_qpdf_check
from tests.unit.stamping.samples import (
    CORPUS,
    SEAL,
    STAMPABLE,
    PageSpec,
    build_pdf,
    certify,
    session_signer,
    stamp_and_sign,
)

_FIELD = f"e-meterai {SEAL.serial}"
_OTHER = Seal(
    serial="MTRAI00000000000099999", verify_url="https://verify.example/v/MTRAI00000000000099999"
)


def _assert_seal_signature_is_valid(signed: bytes, field: str = _FIELD) -> None:
    report = run_pdfsig(signed)
    section = report.split(f"Signature Field Name: {field}")[1].split("Signature #")[0]
    assert "Signature is Valid" in section and "Total document signed" in section
    status = pyhanko_statuses(signed)[field]
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE


@pytest.mark.parametrize("name", STAMPABLE)
def test_corpus_document_signed_passes_pdfsig_pyhanko_and_qpdf(
    name: str, corpus_qpdf_baseline: dict[str, int]
) -> None:
    original = (CORPUS / name).read_bytes()
    signed = stamp_and_sign(original)
    assert signed.startswith(original)
    _assert_seal_signature_is_valid(signed)
    status = run_qpdf_check(signed)
    assert status != 2
    if corpus_qpdf_baseline[name] == 0:
        assert status == 0


@pytest.mark.parametrize("style", ["table", "stream", "hybrid"])
def test_generated_cross_reference_styles_validate(style: str) -> None:
    signed = stamp_and_sign(build_pdf([PageSpec(), PageSpec(rotate=90)], xref=style), page=2)
    _assert_seal_signature_is_valid(signed)
    assert run_qpdf_check(signed) == 0


def test_stamping_twice_keeps_both_signatures_valid() -> None:
    once = stamp_and_sign((CORPUS / "minimal-document.pdf").read_bytes())
    twice = stamp_and_sign(once, seal=_OTHER, rect=Rect(300, 40, 480, 112))
    _assert_seal_signature_is_valid(twice, f"e-meterai {_OTHER.serial}")
    first = pyhanko_statuses(twice)[_FIELD]
    assert first.intact and first.valid and first.trusted
    assert first.modification_level <= ModificationLevel.FORM_FILLING
    report = run_pdfsig(twice)
    assert report.count("Signature is Valid") == 2
    assert run_qpdf_check(twice) == 0


def test_earlier_approval_signature_still_validates() -> None:
    writer = IncrementalPdfFileWriter(BytesIO(build_pdf()))
    approved = signers.sign_pdf(
        writer, signers.PdfSignatureMetadata(field_name="Approver"), signer=session_signer().signer
    ).getvalue()
    signed = stamp_and_sign(approved)
    _assert_seal_signature_is_valid(signed)
    earlier = pyhanko_statuses(signed)["Approver"]
    assert earlier.intact and earlier.valid and earlier.docmdp_ok
    assert earlier.modification_level <= ModificationLevel.FORM_FILLING


@pytest.mark.parametrize("permission", [MDPPerm.FILL_FORMS, MDPPerm.ANNOTATE])
def test_certification_that_a_new_visible_signature_field_breaks_is_refused(
    permission: MDPPerm,
) -> None:
    certified = certify(build_pdf(), permission)
    # pyHanko itself adding a visible signature field: its validator then
    # reports the author's certification as broken, so the engine must refuse.
    writer = IncrementalPdfFileWriter(BytesIO(certified))
    signed = signers.sign_pdf(
        writer,
        signers.PdfSignatureMetadata(field_name="Seal"),
        signer=session_signer().signer,
        new_field_spec=fields.SigFieldSpec("Seal", box=(40, 40, 220, 112)),
    ).getvalue()
    author = pyhanko_statuses(signed)["Author"]
    assert author.intact and author.valid and not author.docmdp_ok
    with pytest.raises(CertifiedNoNewFields, match=f"P={permission.value}"):
        stamp_and_sign(certified)
