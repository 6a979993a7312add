"""Pytest plugin shared by every test folder: real services, databases, PKI and PDF builders.

Loaded with ``-p tests.support.plugin`` (see ``pyproject.toml``) so fixtures are available to
unit, integration and e2e tests alike without conftest chains.
"""

from __future__ import annotations

from tests.support.brokers import *  # noqa: F403  (fixtures)
from tests.support.channels import tls_files  # noqa: F401  (fixture)
from tests.support.databases import *  # noqa: F403  (fixtures)
