"""The document store writes whole documents or nothing, and refuses path tricks."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterai_common.documents import DocumentNotFound, DocumentStore


def test_a_stored_document_reads_back_whole_and_in_chunks(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    data = bytes(range(256)) * 1000
    store.put("stamped", "job-1", data)
    assert store.get("stamped", "job-1") == data
    assert b"".join(store.chunks("stamped", "job-1", size=4096)) == data
    assert store.size("stamped", "job-1") == len(data)


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    store.put("prepared", "job-2", b"%PDF-1.7")
    assert [p.name for p in (tmp_path / "prepared").iterdir()] == ["job-2.pdf"]


def test_missing_documents_raise_not_found(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path)
    with pytest.raises(DocumentNotFound):
        store.get("stamped", "nope")
    with pytest.raises(DocumentNotFound):
        list(store.chunks("stamped", "nope"))
    store.delete("stamped", "nope")


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".hidden"])
def test_names_cannot_escape_the_store(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="invalid document address"):
        DocumentStore(tmp_path).put("stamped", name, b"x")
