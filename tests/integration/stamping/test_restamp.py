"""A stamped document can always be stamped again, and every seal on it keeps validating.

Contracts need one e-meterai per party, so the engine's own output, whatever
the original's cross-reference form, must take a second seal.  Each case
stamps twice at two places and asks pdfsig, pyHanko, qpdf, the platform's
verifier and a QR decoder over the rendered page about both seals.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers

from meterai_stamping.engine import Rect, Seal
from tests.integration.stamping.seal_checks import Placed, assert_seals_hold
from tests.unit.stamping.samples import (
    CORPUS,
    STAMPABLE,
    PageSpec,
    build_pdf,
    session_signer,
    stamp_and_sign,
)

FIRST = Placed(
    Seal("MTRAI0000000000000AAAA", "https://verify.example/v/MTRAI0000000000000AAAA"),
    1,
    Rect(40, 40, 220, 112),
)
SECOND = Placed(
    Seal("MTRAI0000000000000BBBB", "https://verify.example/v/MTRAI0000000000000BBBB"),
    1,
    Rect(300, 40, 480, 112),
)
THIRD = Placed(
    Seal("MTRAI0000000000000CCCC", "https://verify.example/v/MTRAI0000000000000CCCC"),
    1,
    Rect(300, 130, 480, 202),
)


def _stamp_all(original: bytes, placed: list[Placed]) -> bytes:
    out = original
    for item in placed:
        out = stamp_and_sign(out, page=item.page, rect=item.rect, seal=item.seal)
        assert out.startswith(original)
    return out


def _qpdf(original: bytes, tmp_path: Path, *args: str) -> bytes:
    source, target = tmp_path / "in.pdf", tmp_path / "out.pdf"
    source.write_bytes(original)
    subprocess.run(["qpdf", *args, str(source), str(target)], check=True, timeout=60)
    return target.read_bytes()


def _approved(original: bytes) -> bytes:
    # pyHanko signs hybrid-reference files only when not strict.
    writer = IncrementalPdfFileWriter(BytesIO(original), strict=False)
    meta = signers.PdfSignatureMetadata(field_name="Approver")
    return signers.sign_pdf(writer, meta, signer=session_signer().signer).getvalue()


_KNOWN_GAPS = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            marks=pytest.mark.xfail(strict=True, reason=_KNOWN_GAPS[name]),
        )
        if name in _KNOWN_GAPS
        else name
        for name in STAMPABLE
    ],
)
def test_corpus_document_takes_two_seals_that_both_validate(
    name: str, corpus_qpdf_baseline: dict[str, int]
) -> None:
    original = (CORPUS / name).read_bytes()
    twice = _stamp_all(original, [FIRST, SECOND])
    assert_seals_hold(twice, [FIRST, SECOND], qpdf_clean=corpus_qpdf_baseline[name] == 0)


_VARIANTS: dict[str, Callable[[Path], bytes]] = {
    "classic table": lambda _: build_pdf(),
    "xref stream": lambda _: build_pdf(xref="stream"),
    "hybrid xref": lambda _: build_pdf(xref="hybrid"),
    "rotated 90 hybrid": lambda _: build_pdf([PageSpec(rotate=90)], xref="hybrid"),
    "rotated 270 with CropBox": lambda _: build_pdf(
        [PageSpec(rotate=270, crop=(20, 20, 580, 830))]
    ),
    "linearized": lambda tmp: _qpdf(
        (CORPUS / "pdflatex-4-pages.pdf").read_bytes(), tmp, "--linearize"
    ),
    "object streams": lambda tmp: _qpdf(
        (CORPUS / "libre-office-link.pdf").read_bytes(), tmp, "--object-streams=generate"
    ),
    "linearized object streams": lambda tmp: _qpdf(
        (CORPUS / "pdflatex-image.pdf").read_bytes(),
        tmp,
        "--linearize",
        "--object-streams=generate",
    ),
}


@pytest.mark.parametrize("variant", sorted(_VARIANTS))
def test_generated_variant_takes_three_seals_that_all_validate(
    variant: str, tmp_path: Path
) -> None:
    original = _VARIANTS[variant](tmp_path)
    thrice = _stamp_all(original, [FIRST, SECOND, THIRD])
    assert_seals_hold(thrice, [FIRST, SECOND, THIRD])


@pytest.mark.parametrize("style", ["table", "hybrid"])
def test_an_already_signed_document_takes_two_seals_and_keeps_its_signature(style: str) -> None:
    approved = _approved(build_pdf(xref=style))
    twice = _stamp_all(approved, [FIRST, SECOND])
    assert_seals_hold(twice, [FIRST, SECOND], earlier=1)


def test_a_repaired_original_takes_a_second_seal() -> None:
    original = build_pdf()
    broken = original.replace(b"startxref\n", b"startxref\n1").replace(b"%%EOF", b"%%EOF ")
    twice = _stamp_all(broken, [FIRST, SECOND])
    assert_seals_hold(twice, [FIRST, SECOND], qpdf_clean=False)
