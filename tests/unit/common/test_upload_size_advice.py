"""A document no submission can carry is refused by the reseller's own SDK and CLI, before
anything is read or sent, with a message that says what to do: past the call's size limit
gRPC itself would answer only "message larger than max" and the server never sees the call."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from meterai_cli.stamp import MAX_DOCUMENT_BYTES, InputFile, StampRequest, _stamp_one, _too_large
from meterai_client import Client, MeteraiError


def test_the_sdk_refuses_an_oversized_document_before_sending_it() -> None:
    # Nothing listens on port 9: a call would fail UNAVAILABLE, not with this refusal.
    client = Client("127.0.0.1", {"quota": 9, "stamping": 9, "verify": 9}, api_key=None, ca=b"")
    with pytest.raises(MeteraiError) as refused:
        client.submit(
            b"%PDF" + bytes(30 * 2**20),
            page=1,
            rect=(0, 0, 100, 100),
            document_type="Surat",
            filename="scan.pdf",
        )
    assert refused.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.reason == "DOCUMENT_TOO_LARGE"
    assert "scan.pdf is 30.0 MiB" in refused.value.message
    assert "Compress or split it" in refused.value.message


class _NoCalls:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the CLI called {name} for a file it must refuse first")


def test_the_cli_refuses_an_oversized_file_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "scan.pdf"
    with big.open("wb") as handle:  # sparse: the size is there, the bytes are not
        handle.truncate(30 * 2**20)
    result = _stamp_one(
        _NoCalls(),
        None,  # type: ignore[arg-type]
        InputFile(big, Path("scan.pdf")),
        tmp_path / "out",
        StampRequest(1, (0, 0, 100, 100), "Surat", "", "", 0, None),
    )
    assert not result.ok
    assert result.error.startswith("RESOURCE_EXHAUSTED: scan.pdf is 30.0 MiB")
    assert "nothing was charged" in result.error


def test_a_file_at_the_limit_is_sent() -> None:
    assert _too_large(MAX_DOCUMENT_BYTES, "scan.pdf") is None
    assert _too_large(MAX_DOCUMENT_BYTES + 1, "scan.pdf") is not None
