"""Where the real-world PDF corpus lives, and what a test does when it is not there.

The corpus (real PDFs from many producers, with a MANIFEST.md of the expected outcome of each)
is kept beside the project, in ``shared/pdf-corpus`` next to the project root, or wherever
``METERAI_PDF_CORPUS`` points. A clone of the project alone must still pass ``make test``, so
the corpus-driven tests are skipped without it, with the reason, **except in CI**
(``CI=true``): there a missing corpus fails the run, because a conformance suite that silently
did not run is a guarantee nobody checked.

Tests reach the corpus through :data:`CORPUS`: ``CORPUS / "name.pdf"`` asks for the corpus
first (:func:`require_corpus`), so a test, a fixture or a module that reads from it is skipped
(or failed, in CI) as a whole, and everything else runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["CORPUS", "corpus_present", "require_corpus"]

_DEFAULT = Path(__file__).resolve().parents[2].parent / "shared" / "pdf-corpus"


def _root() -> Path:
    return Path(os.environ.get("METERAI_PDF_CORPUS") or _DEFAULT)


def corpus_present() -> bool:
    return (_root() / "MANIFEST.md").is_file()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_corpus() -> None:
    """Return if the corpus is there; otherwise skip the caller (a test, a fixture or, at
    import, its whole module), or fail it in CI."""
    if corpus_present():
        return
    message = (
        f"the PDF corpus is not at {_root()} (shared/pdf-corpus beside the project root, or "
        "METERAI_PDF_CORPUS): corpus-driven tests need it"
    )
    if _in_ci():
        pytest.fail(f"{message}, and in CI they are mandatory", pytrace=False)
    pytest.skip(message, allow_module_level=True)


class _CorpusFolder(type(Path())):  # type: ignore[misc]
    """The corpus folder; a path below it is only handed out once the corpus is there."""

    def __truediv__(self, name: str | os.PathLike[str]) -> Path:
        require_corpus()
        return _root() / name


CORPUS: Path = _CorpusFolder(_DEFAULT)
"""``CORPUS / "file.pdf"``: a file of the corpus (see the module docstring)."""
