"""Session fixtures for the stamp-engine integration tests."""

from __future__ import annotations

import pytest

from tests.integration.stamping.validators import run_qpdf_check
from tests.unit.stamping.samples import CORPUS, STAMPABLE


@pytest.fixture(scope="session")
def corpus_qpdf_baseline() -> dict[str, int]:
    """qpdf --check status of each original: a damaged original may keep its warnings."""
    return {name: run_qpdf_check((CORPUS / name).read_bytes()) for name in STAMPABLE}
