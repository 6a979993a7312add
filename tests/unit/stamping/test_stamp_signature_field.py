"""The signature dictionary, field, widget and AcroForm written by ``prepare``."""

from __future__ import annotations

from io import BytesIO

from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from meterai_stamping.engine import Rect
from tests.unit.stamping.samples import (
    CORPUS,
    SEAL,
    SIGNATURE_SIZE,
    PageSpec,
    build_pdf,
    prepare_seal,
)


def _seal_field(data: bytes) -> tuple[PdfReader, DictionaryObject]:
    reader = PdfReader(BytesIO(data))
    fields = reader.trailer["/Root"]["/AcroForm"]["/Fields"]
    field = fields[-1].get_object()
    return reader, field


def test_signature_dictionary_is_pades_with_time_and_reason() -> None:
    _, field = _seal_field(prepare_seal(build_pdf()).data)
    sig = field["/V"]
    assert sig["/Type"] == "/Sig"
    assert sig["/Filter"] == "/Adobe.PPKLite"
    assert sig["/SubFilter"] == "/ETSI.CAdES.detached"
    assert sig["/M"] == "D:20250102030405Z"
    assert sig["/Reason"] == f"e-meterai {SEAL.serial}"
    assert len(sig["/Contents"].original_bytes) == SIGNATURE_SIZE


def test_field_is_a_printable_widget_on_the_chosen_page_with_an_appearance() -> None:
    reader, field = _seal_field(prepare_seal(build_pdf([PageSpec()] * 3), page=2).data)
    assert field["/FT"] == "/Sig" and field["/Subtype"] == "/Widget"
    assert field["/T"] == f"e-meterai {SEAL.serial}"
    assert field["/F"] == 4
    assert field.raw_get("/P").idnum == reader.pages[1].indirect_reference.idnum
    assert field["/AP"]["/N"]["/Subtype"] == "/Form"
    annots = [a.idnum for a in reader.pages[1]["/Annots"]]
    assert field.indirect_reference.idnum in annots
    assert "/Annots" not in reader.pages[0]


def test_acroform_gets_sigflags_3() -> None:
    reader, _ = _seal_field(prepare_seal(build_pdf()).data)
    assert reader.trailer["/Root"]["/AcroForm"]["/SigFlags"] == 3


def test_existing_form_fields_and_indirect_acroform_are_kept() -> None:
    original = (CORPUS / "pdflatex-forms.pdf").read_bytes()
    before = PdfReader(BytesIO(original))
    after = PdfReader(BytesIO(prepare_seal(original).data))
    old_fields = before.get_fields() or {}
    new_fields = after.get_fields() or {}
    assert all(new_fields[name].get("/V") == f.get("/V") for name, f in old_fields.items())
    assert (
        after.trailer["/Root"].raw_get("/AcroForm").idnum
        == before.trailer["/Root"].raw_get("/AcroForm").idnum
    )


def test_existing_annotations_and_links_are_kept() -> None:
    for name in ("annotated_pdf.pdf", "libre-office-link.pdf"):
        original = (CORPUS / name).read_bytes()
        old = [a.get_object()["/Subtype"] for a in PdfReader(BytesIO(original)).pages[0]["/Annots"]]
        new = [
            a.get_object()["/Subtype"]
            for a in PdfReader(BytesIO(prepare_seal(original).data)).pages[0]["/Annots"]
        ]
        assert new == [*old, "/Widget"]


def test_attachments_outlines_and_pdfa_metadata_survive() -> None:
    attached = PdfReader(BytesIO(prepare_seal((CORPUS / "with-attachment.pdf").read_bytes()).data))
    assert attached.attachments
    outlined = PdfReader(
        BytesIO(prepare_seal((CORPUS / "outlines-with-invalid-destinations.pdf").read_bytes()).data)
    )
    assert outlined.trailer["/Root"]["/Outlines"]
    pdfa = PdfReader(BytesIO(prepare_seal((CORPUS / "crazyones-pdfa.pdf").read_bytes()).data))
    root = pdfa.trailer["/Root"]
    assert b"pdfaid" in root["/Metadata"].get_data() and root["/OutputIntents"]


def test_second_seal_gets_its_own_field_even_with_the_same_serial() -> None:
    once = prepare_seal(build_pdf()).data
    reader = PdfReader(BytesIO(prepare_seal(once, rect=Rect(300, 40, 480, 112)).data))
    names = [f.get_object()["/T"] for f in reader.trailer["/Root"]["/AcroForm"]["/Fields"]]
    assert names == [f"e-meterai {SEAL.serial}", f"e-meterai {SEAL.serial} (2)"]
