"""The project's tests stand alone: without the PDF corpus beside the project, the tests that
read it are skipped with the reason and everything else runs; in CI (``CI=true``) a missing
corpus fails the run instead, and with the corpus present those tests run.

Each case runs pytest in a child process on a small test module, with ``METERAI_PDF_CORPUS``
pointing at a folder with or without a corpus.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]

SAMPLE = """
from tests.support.corpus import CORPUS


def test_reads_the_corpus():
    assert (CORPUS / "doc.pdf").read_bytes().startswith(b"%PDF")


def test_needs_nothing():
    assert True
"""

MODULE_LEVEL = """
from tests.support.corpus import CORPUS

DOCUMENT = (CORPUS / "doc.pdf").read_bytes()


def test_uses_the_document():
    assert DOCUMENT
"""


def _pytest(
    tmp_path: Path, source: str, corpus: Path, ci: bool
) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_sample_corpus_use.py"
    test_file.write_text(source)
    (tmp_path / "test_sample_other.py").write_text("def test_other():\n    assert True\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["METERAI_PDF_CORPUS"] = str(corpus)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(PROJECT),
            "-p",
            "tests.support.corpus",
            str(tmp_path),
        ],
        cwd=PROJECT,
        env={**env, "PYTHONPATH": str(PROJECT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def present(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "MANIFEST.md").write_text("# test corpus\n")
    (corpus / "doc.pdf").write_bytes(b"%PDF-1.7\n")
    return corpus


def test_without_the_corpus_its_tests_are_skipped_and_the_rest_runs(tmp_path: Path) -> None:
    result = _pytest(tmp_path, SAMPLE, tmp_path / "absent", ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 1 skipped" in result.stdout, result.stdout


def test_a_module_that_reads_it_on_import_is_skipped_not_an_error(tmp_path: Path) -> None:
    result = _pytest(tmp_path, MODULE_LEVEL, tmp_path / "absent", ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout, result.stdout
    assert "error" not in result.stdout.lower(), result.stdout


@pytest.mark.parametrize("source", [SAMPLE, MODULE_LEVEL], ids=["in a test", "on import"])
def test_in_ci_a_missing_corpus_fails_the_run(tmp_path: Path, source: str) -> None:
    result = _pytest(tmp_path, source, tmp_path / "absent", ci=True)
    assert result.returncode != 0, result.stdout
    assert "mandatory" in result.stdout, result.stdout
    assert "skipped" not in result.stdout


def test_with_the_corpus_its_tests_run(tmp_path: Path, present: Path) -> None:
    result = _pytest(tmp_path, SAMPLE, present, ci=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout, result.stdout
