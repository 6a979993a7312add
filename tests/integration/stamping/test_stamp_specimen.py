"""The issuer's specimen artwork can be the seal: drawn where asked, with a scannable QR code
and the serial where the specimen says; on an encrypted document, encrypted like the rest."""

from __future__ import annotations

from io import BytesIO

from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, StreamObject

from meterai_stamping.engine import Rect, Specimen, check_stamped, embed_signature, inspect, prepare
from tests.integration.stamping.seal_checks import pixel_box
from tests.integration.stamping.validators import (
    decode_qr,
    pyhanko_statuses,
    render,
    run_qpdf_check,
)
from tests.unit.stamping.samples import (
    CORPUS,
    SEAL,
    SIGNATURE_SIZE,
    SIGNING_TIME,
    build_pdf,
    session_signer,
)

_RECT = Rect(300, 600, 500, 700)
_QR_BOX = (110.0, 10.0, 190.0, 90.0)


def _stamp(pdf: bytes, specimen: Specimen) -> bytes:
    prepared = prepare(
        pdf,
        page=1,
        rect=_RECT,
        seal=SEAL,
        signature_size=SIGNATURE_SIZE,
        signing_time=SIGNING_TIME,
        reason="specimen",
        specimen=specimen,
    )
    cms = session_signer().sign_digest(prepared.digest)
    return embed_signature(prepared.data, prepared.contents_start, prepared.contents_end, cms)


def _qr_in_its_box(stamped: bytes) -> str | None:
    height = inspect(stamped).page_sizes[0].height
    # The artwork (200 x 100) fills the 200 x 100 pt rectangle: its units are points here.
    box = Rect(_RECT.x0 + _QR_BOX[0], _RECT.y0 + _QR_BOX[1], _RECT.x0 + _QR_BOX[2],
               _RECT.y0 + _QR_BOX[3])  # fmt: skip
    barcode = decode_qr(render(stamped, 1, 300).crop(*pixel_box(box, height, 300, grow=4)))
    return None if barcode is None else barcode.text


def test_a_vector_specimen_is_drawn_with_the_qr_code_in_its_box() -> None:
    artwork = b"0.1 0.3 0.6 rg 0 0 200 100 re f 1 1 1 rg BT /Art 14 Tf 10 70 Td (SPESIMEN) Tj ET"
    specimen = Specimen(
        width=200,
        height=100,
        qr_box=_QR_BOX,
        serial_box=(8.0, 10.0, 105.0, 30.0),
        content=artwork,
        resources=b"<< /Font << /Art << /Type /Font /Subtype /Type1 "
        b"/BaseFont /Helvetica-Bold >> >> >>",
    )
    stamped = _stamp(build_pdf(), specimen)
    check_stamped(stamped)
    assert _qr_in_its_box(stamped) == SEAL.verify_url
    page = render(stamped, 1, 72)
    height = inspect(stamped).page_sizes[0].height
    x, y = int(_RECT.x0 + 50), int(height - (_RECT.y0 + 50))
    assert 40 < page.at(x, y) < 120  # the artwork's blue, in grey


def _jpeg_specimen() -> tuple[StreamObject, Specimen]:
    """The corpus's JPEG as specimen artwork, with the image it comes from."""
    reader = PdfReader(CORPUS / "jpeg.pdf")
    image = next(iter(reader.pages[0]["/Resources"]["/XObject"].values())).get_object()
    specimen = Specimen(
        width=200,
        height=100,
        qr_box=_QR_BOX,
        serial_box=(8.0, 10.0, 105.0, 30.0),
        jpeg=image._data,
        jpeg_pixels=(int(image["/Width"]), int(image["/Height"])),
    )
    return image, specimen


def test_a_jpeg_specimen_is_embedded_once_as_an_image() -> None:
    image, specimen = _jpeg_specimen()
    stamped = _stamp(build_pdf(), specimen)
    check_stamped(stamped)
    assert stamped.count(image._data) == 1
    assert _qr_in_its_box(stamped) == SEAL.verify_url


def _aes256(pdf: bytes) -> bytes:
    writer = PdfWriter(clone_from=BytesIO(pdf))
    writer.encrypt(user_password="", owner_password="pemilik", algorithm="AES-256")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _seal_appearance(stamped: bytes) -> DictionaryObject:
    """The appearance stream of the last seal, as a reader decrypting the file sees it."""
    (widget,) = [a.get_object() for a in PdfReader(BytesIO(stamped)).pages[0]["/Annots"]]
    return widget["/AP"]["/N"].get_object()


def _holds_up(stamped: bytes) -> None:
    check_stamped(stamped)
    assert run_qpdf_check(stamped) == 0
    assert all(status.bottom_line for status in pyhanko_statuses(stamped).values())
    assert _qr_in_its_box(stamped) == SEAL.verify_url


def test_on_an_encrypted_document_a_specimen_whose_resources_hold_strings_is_encrypted() -> None:
    title = b"SPESIMEN-PERURI"
    specimen = Specimen(
        width=200,
        height=100,
        qr_box=_QR_BOX,
        serial_box=(8.0, 10.0, 105.0, 30.0),
        content=b"0.1 0.3 0.6 rg 0 0 200 100 re f",
        resources=b"<< /Properties << /Spesimen << /Title (" + title + b") >> >> >>",
    )
    original = _aes256(build_pdf())
    stamped = _stamp(original, specimen)
    _holds_up(stamped)
    assert title not in stamped[len(original) :]
    resources = _seal_appearance(stamped)["/Resources"]
    assert resources["/Properties"]["/Spesimen"]["/Title"] == title.decode()


def test_on_an_encrypted_document_a_jpeg_specimen_is_stored_encrypted() -> None:
    image, specimen = _jpeg_specimen()
    original = _aes256(build_pdf())
    stamped = _stamp(original, specimen)
    _holds_up(stamped)
    assert image._data[:64] not in stamped
    embedded = _seal_appearance(stamped)["/Resources"]["/XObject"]
    assert [x.get_object()._data for x in embedded.values()] == [image._data]
