"""Documents changed after stamping, the ways a forger would: for the verification tests.

Each function takes a stamped PDF and returns it with one incremental update appended, made
with pyHanko's incremental writer (the stamped bytes stay an exact prefix, as in any real
edit by a PDF tool), so the seal's own signature still verifies and only the verdict on what
changed after it can tell.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.stamp import TextStampStyle
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, TextStringObject

__all__ = [
    "FORM_FIELD",
    "add_annotation",
    "change_content",
    "fill_form_field",
    "form_pdf",
    "sign_later",
]

FORM_FIELD = "amount"
"""The text field :func:`form_pdf` carries."""


def form_pdf(value: str = "Rp 10.000") -> bytes:
    """A one-page A4 PDF with one text form field :data:`FORM_FIELD` holding ``value``."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=595, height=842)
    field = DictionaryObject(
        {
            NameObject("/FT"): NameObject("/Tx"),
            NameObject("/T"): TextStringObject(FORM_FIELD),
            NameObject("/V"): TextStringObject(value),
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (50, 700, 250, 720)]),
        }
    )
    ref = writer._add_object(field)
    page[NameObject("/Annots")] = ArrayObject([ref])
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject([ref])}
    )
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _written(writer: IncrementalPdfFileWriter) -> bytes:
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _first_page(writer: IncrementalPdfFileWriter) -> generic.DictionaryObject:
    page: generic.DictionaryObject = writer.root["/Pages"]["/Kids"][0].get_object()
    return page


def fill_form_field(pdf: bytes, value: str = "Rp 999.999.999") -> bytes:
    """Set :data:`FORM_FIELD` to ``value`` in a new revision."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == FORM_FIELD:
            field["/V"] = pdf_string(value)
            writer.update_container(field)
            return _written(writer)
    raise ValueError(f"no form field {FORM_FIELD!r} in this document")


def add_annotation(pdf: bytes, text: str = "DIBATALKAN") -> bytes:
    """Add a FreeText annotation reading ``text`` to the first page."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    page = _first_page(writer)
    note = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Annot"),
            pdf_name("/Subtype"): pdf_name("/FreeText"),
            pdf_name("/Rect"): generic.ArrayObject(
                [generic.FloatObject(v) for v in (50, 50, 545, 792)]
            ),
            pdf_name("/Contents"): pdf_string(text),
        }
    )
    annots = page.get("/Annots")
    if annots is None:
        page["/Annots"] = generic.ArrayObject([writer.add_object(note)])
    else:
        annots.get_object().append(writer.add_object(note))
    writer.update_container(page)
    return _written(writer)


def change_content(pdf: bytes, text: str = "PERJANJIAN INI DIBATALKAN") -> bytes:
    """Replace the first page's content with a line of ``text``."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    page = _first_page(writer)
    content = f"BT /Helv 24 Tf 60 400 Td ({text}) Tj ET".encode()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=content))
    writer.update_container(page)
    return _written(writer)


def sign_later(
    pdf: bytes,
    key: Path,
    certificate: Path,
    *,
    field_name: str = "Persetujuan",
    box: tuple[int, int, int, int] | None = None,
    text: str = "PERJANJIAN INI DIBATALKAN",
) -> bytes:
    """Sign ``pdf`` again as another party (``key``/``certificate`` PEM): invisibly, or with a
    visible widget at ``box`` reading ``text`` (the page-covering signature of the issue)."""
    signer = signers.SimpleSigner.load(str(key), str(certificate))
    assert signer is not None, "the other party's key or certificate does not load"
    spec = None if box is None else fields.SigFieldSpec(field_name, box=box, on_page=0)
    pdf_signer = signers.PdfSigner(
        signers.PdfSignatureMetadata(field_name=field_name),
        signer=signer,
        stamp_style=TextStampStyle(stamp_text=text),
        new_field_spec=spec,
    )
    out = pdf_signer.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)))
    return out.getvalue()
