"""Linearized files stamp like any other; decompression bombs are refused in bounded time and
memory, in a process that survives them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from tests.integration.stamping.validators import run_pdfsig, run_qpdf_check
from tests.unit.stamping.samples import CORPUS, SEAL, stamp_and_sign


@pytest.mark.parametrize("name", ["pdflatex-4-pages.pdf", "libre-office-link.pdf"])
def test_a_linearized_document_is_stamped_and_validates(name: str, tmp_path: Path) -> None:
    linearized = tmp_path / name
    subprocess.run(
        ["qpdf", "--linearize", str(CORPUS / name), str(linearized)], check=True, timeout=60
    )
    original = linearized.read_bytes()
    assert b"/Linearized" in original[:1024]
    signed = stamp_and_sign(original)
    assert signed.startswith(original)
    report = run_pdfsig(signed)
    assert "Signature is Valid" in report and "Total document signed" in report, report
    assert run_qpdf_check(signed) != 2


def _xref_stream_bomb(path: Path, inflated: int) -> int:
    """A PDF whose cross-reference stream inflates to ``inflated`` bytes; returns file size."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    table = b"\x00\x00\x00\x00\x00\xff" + b"".join(
        b"\x01" + offset.to_bytes(4, "big") + b"\x00" for offset in offsets
    )
    table += b"\x01" + xref_at.to_bytes(4, "big") + b"\x00"
    packer = zlib.compressobj(9)
    data = packer.compress(table)
    chunk = bytes(1 << 20)
    for _ in range(inflated >> 20):
        data += packer.compress(chunk)
    data += packer.flush()
    out += (
        b"4 0 obj\n<< /Type /XRef /Size 5 /W [1 4 1] /Root 1 0 R /Filter /FlateDecode "
        b"/Length %d >>\nstream\n" % len(data)
    )
    out += data + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    path.write_bytes(bytes(out))
    return len(out)


def test_a_decompression_bomb_is_refused_quickly_with_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.pdf"
    size = _xref_stream_bomb(bomb, inflated=1 << 30)
    assert size < 2 * 1024 * 1024  # a small file that would inflate to 1 GiB
    probe = textwrap.dedent(
        f"""
        import json, resource, time
        from datetime import UTC, datetime
        from pathlib import Path
        from meterai_stamping.engine import Rect, Seal, StampError, prepare
        data = Path({str(bomb)!r}).read_bytes()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        try:
            prepare(data, page=1, rect=Rect(300, 60, 440, 200),
                    seal=Seal({SEAL.serial!r}, {SEAL.verify_url!r}), signature_size=8192,
                    signing_time=datetime.now(UTC), reason="bomb")
            outcome = "stamped"
        except StampError as error:
            outcome = type(error).__name__ + ": " + str(error)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"outcome": outcome, "seconds": time.monotonic() - started,
                          "growth_mb": (peak - before) / 1024}}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["outcome"] != "stamped", verdict
    assert verdict["seconds"] < 5, verdict
    assert verdict["growth_mb"] < 256, verdict
