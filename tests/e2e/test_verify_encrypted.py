"""An encrypted document with a user password, stamped twice on ``meterai up`` and verified by
``meterai verify FILE --password``: genuine with its password, refused with a request for it
without."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.corpus import CORPUS
from tests.support.launch import EmbeddedPlatform

USER = "rahasia"


def test_meterai_verify_takes_the_document_password(tmp_path: Path) -> None:
    original = tmp_path / "letter.pdf"
    subprocess.run(
        ["qpdf", "--encrypt", USER, "pemilik", "256", "--",
         str(CORPUS / "pdflatex-4-pages.pdf"), str(original)],
        check=True,
        timeout=60,
    )  # fmt: skip
    (tmp_path / "home").mkdir()
    platform = EmbeddedPlatform(tmp_path / "home").start()
    try:
        assert platform.cli("quota", "buy", "2").code == 0
        source = original
        for index, rect in enumerate(["40,40,220,112", "300,40,480,112"]):
            out = tmp_path / f"out{index}"
            stamped = platform.cli(
                "stamp", str(source), "--rect", rect, "--password", USER,
                "--out", str(out), "--json",
            )  # fmt: skip
            assert stamped.code == 0, stamped.stdout + stamped.stderr
            source = out / original.name
        genuine = platform.cli("verify", str(source), "--password", USER)
        assert genuine.code == 0, genuine.stdout + genuine.stderr
        assert "GENUINE" in genuine.stdout
        assert genuine.stdout.count("seal ") == 2, genuine.stdout
        without = platform.cli("verify", str(source))
        assert without.code != 0
        assert "supply the document's password" in without.stdout + without.stderr
    finally:
        platform.stop()
