"""Stamped, signed documents pass pdfsig, pyHanko and qpdf, also beside earlier signatures."""

from __future__ import annotations

from io import BytesIO

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY,
    FormUpdatingRule,
    GenericFieldModificationRule,
    ModificationLevel,
    SigFieldCreationRule,
    SigFieldModificationRule,
    StandardDiffPolicy,
)
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from meterai_stamping.engine import Rect, Seal
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


def test_certification_allowing_form_filling_stays_intact_and_only_gains_a_signature_field() -> (
    None
):
    certified = certify(build_pdf(), MDPPerm.FILL_FORMS)
    signed = stamp_and_sign(certified)
    _assert_seal_signature_is_valid(signed)
    # pyHanko's default policy forbids any new *visible* signature field after
    # certification; with that one rule relaxed the update must be pure form filling.
    relaxed = StandardDiffPolicy(
        global_rules=DEFAULT_DIFF_POLICY.global_rules,
        form_rule=FormUpdatingRule(
            field_rules=[
                SigFieldCreationRule(allow_new_visible_after_certify=True),
                SigFieldModificationRule(),
                GenericFieldModificationRule(),
            ]
        ),
    )
    reader = PdfFileReader(BytesIO(signed), strict=False)
    author = next(s for s in reader.embedded_signatures if s.field_name == "Author")
    status = validate_pdf_signature(
        author, ValidationContext(trust_roots=[session_signer().certificate]), diff_policy=relaxed
    )
    assert status.intact and status.valid and status.docmdp_ok
    assert status.modification_level == ModificationLevel.FORM_FILLING
