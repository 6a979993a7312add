"""TLS for tests that talk gRPC directly: a platform CA per session, channels that trust it.

Tests talk TLS like every client does (plaintext exists only behind ``--insecure``); a server
started in-process gets the session's certificates, a platform started as processes has its
own under ``$METERAI_HOME/tls``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest

from meterai_common.tls import TlsFiles, ensure_platform_tls, secure_channel

__all__ = ["platform_channel", "tls_files"]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A platform CA and service certificates shared by the session's in-process servers."""
    return ensure_platform_tls(tmp_path_factory.mktemp("tls"))


def platform_channel(
    home_or_files: Path | TlsFiles,
    port: int,
    *,
    identity: str | None = None,
    options: Sequence[tuple[str, object]] = (),
) -> grpc.Channel:
    """A TLS channel to ``127.0.0.1:port`` trusting the platform CA of ``home_or_files`` (a
    ``METERAI_HOME`` or the CA folder), showing ``identity``'s client certificate if given."""
    files = (
        home_or_files if isinstance(home_or_files, TlsFiles) else TlsFiles(home_or_files / "tls")
    )
    return secure_channel(f"127.0.0.1:{port}", files.client(identity), options)
