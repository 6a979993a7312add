"""Marks every test by the folder it lives in and rejects tests outside the known folders.

The folder decides what a test may touch: ``unit`` runs in memory and temp files, ``integration``
talks to the real RabbitMQ/PostgreSQL on 127.0.0.1, ``e2e`` runs the services as separate
processes and checks their output with external validators.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_KINDS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        relative = Path(str(item.fspath)).relative_to(root)
        kind = relative.parts[0]
        if kind not in _KINDS:
            raise pytest.UsageError(f"{relative}: tests live under one of {', '.join(_KINDS)}")
        item.add_marker(getattr(pytest.mark, kind))
