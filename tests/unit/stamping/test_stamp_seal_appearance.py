"""The seal drawing: a scannable QR code of the verify URL and the stamp-duty legend."""

from __future__ import annotations

import zlib
from io import BytesIO

import zxingcpp
from pypdf import PdfReader

from meterai_stamping.engine import Rect
from meterai_stamping.engine.appearance import LEGEND, layout_seal, seal_content
from meterai_stamping.engine.qr import QUIET_ZONE, encode_qr
from meterai_stamping.engine.stamp import MIN_MODULE_PT
from tests.unit.stamping.samples import SEAL, build_pdf, prepare_seal


def test_qr_runs_rebuild_exactly_the_encoded_matrix() -> None:
    qr = encode_qr(SEAL.verify_url)
    image = memoryview(
        zxingcpp.create_barcode(
            SEAL.verify_url, zxingcpp.BarcodeFormat.QRCode, ec_level="M"
        ).to_image(scale=1, add_quiet_zones=False)
    ).tobytes()
    rebuilt = bytearray(b"\xff" * (qr.size * qr.size))
    for row, col, length in qr.runs:
        rebuilt[row * qr.size + col : row * qr.size + col + length] = b"\x00" * length
    assert bytes(rebuilt) == image


def test_wide_rectangle_puts_the_qr_on_the_full_height_and_text_beside() -> None:
    layout = layout_seal(180, 72, encode_qr(SEAL.verify_url))
    assert layout.qr_side == 72 and layout.text_box[0] >= 72


def test_tall_rectangle_puts_the_qr_on_top() -> None:
    layout = layout_seal(60, 100, encode_qr(SEAL.verify_url))
    assert layout.qr_side == 60 and layout.qr_y == 40 and layout.text_box[3] <= 40


def test_minimum_rectangle_still_gives_scannable_modules() -> None:
    qr = encode_qr(SEAL.verify_url)
    layout = layout_seal(41, 41 * 1.5, qr)
    assert layout.module >= MIN_MODULE_PT


def test_content_draws_legend_serial_and_quiet_zone_inside_the_box() -> None:
    qr = encode_qr(SEAL.verify_url)
    content = seal_content(layout_seal(180, 72, qr), qr, SEAL.serial)
    for line in (*LEGEND, SEAL.serial):
        assert f"({line}) Tj".encode() in content
    assert f"{QUIET_ZONE} {qr.size - 1 + QUIET_ZONE}".encode() in content or b" re" in content


def test_appearance_stream_in_the_file_is_compressed_and_uses_standard_fonts() -> None:
    data = prepare_seal(build_pdf(), rect=Rect(40, 40, 220, 112)).data
    widget = PdfReader(BytesIO(data)).pages[0]["/Annots"][-1].get_object()
    stream = widget["/AP"]["/N"]
    assert stream["/Filter"] == "/FlateDecode"
    fonts = stream["/Resources"]["/Font"]
    assert {fonts[k]["/BaseFont"] for k in fonts} == {"/Helvetica", "/Helvetica-Bold"}
    assert b"METERAI ELEKTRONIK" in zlib.decompress(stream._data)
    assert len(stream._data) < 2500
