"""The document store writes whole documents or nothing, and refuses path tricks — the same in
a directory and in the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterai_common.db import create_engine, migrate
from meterai_common.documents import (
    DatabaseStore,
    DirectoryStore,
    DocumentNotFound,
    DocumentStore,
    open_document_store,
)


@pytest.fixture(params=["directory", "database"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "directory":
        yield DirectoryStore(tmp_path / "documents")
        return
    engine = create_engine(f"sqlite:///{tmp_path / 'documents.db'}")
    migrate(engine)
    yield DatabaseStore(engine)
    engine.dispose()


def test_a_stored_document_reads_back_whole_and_in_chunks(store: DocumentStore) -> None:
    data = bytes(range(256)) * 1000
    store.put("stamped", "job-1", data)
    assert store.get("stamped", "job-1") == data
    assert b"".join(store.chunks("stamped", "job-1", size=4096)) == data
    assert store.size("stamped", "job-1") == len(data)


def test_writing_again_replaces_the_document(store: DocumentStore) -> None:
    store.put("prepared", "job-3", b"first")
    store.put("prepared", "job-3", b"second")
    assert store.get("prepared", "job-3") == b"second"


def test_missing_documents_raise_not_found(store: DocumentStore) -> None:
    with pytest.raises(DocumentNotFound):
        store.get("stamped", "nope")
    with pytest.raises(DocumentNotFound):
        list(store.chunks("stamped", "nope"))
    with pytest.raises(DocumentNotFound):
        store.size("stamped", "nope")
    store.delete("stamped", "nope")


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".hidden"])
def test_names_cannot_escape_the_store(store: DocumentStore, name: str) -> None:
    with pytest.raises(ValueError, match="invalid document address"):
        store.put("stamped", name, b"x")


def test_no_temporary_file_is_left_behind_in_a_directory(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.put("prepared", "job-2", b"%PDF-1.7")
    assert [p.name for p in (tmp_path / "prepared").iterdir()] == ["job-2.pdf"]


def test_the_location_chooses_the_store(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(open_document_store("database", engine), DatabaseStore)
    assert isinstance(open_document_store(str(tmp_path), engine), DirectoryStore)
    engine.dispose()
