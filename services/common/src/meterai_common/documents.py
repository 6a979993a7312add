"""Document store: where PDFs live while and after they are stamped.

Messages carry job ids and digests, never document bytes; every stamping process reads and
writes documents here instead. Two stores:

* :class:`DirectoryStore` (default): a directory, for one host or hosts sharing a volume.
  Writes are atomic (temporary file, fsync, rename): a crash never leaves a half-written
  document under its final name.
* :class:`DatabaseStore` (``METERAI_DOCUMENTS=database``): the platform's own database, for
  stamping processes on several hosts with no shared volume. Each write is one transaction.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meterai_common.db import reading, transaction

__all__ = [
    "DatabaseStore",
    "DirectoryStore",
    "DocumentNotFound",
    "DocumentStore",
    "open_document_store",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class DocumentNotFound(LookupError):
    """No document is stored under that name."""


def _check(area: str, name: str) -> None:
    if not _NAME.match(area) or not _NAME.match(name):
        raise ValueError(f"invalid document address {area!r}/{name!r}")


class DocumentStore(Protocol):
    """Documents addressed by ``(area, name)``, e.g. ``("stamped", job_id)``."""

    def put(self, area: str, name: str, data: bytes) -> None: ...
    def get(self, area: str, name: str) -> bytes: ...
    def chunks(self, area: str, name: str, size: int = 1 << 20) -> Iterator[bytes]: ...
    def size(self, area: str, name: str) -> int: ...
    def delete(self, area: str, name: str) -> None: ...


class DirectoryStore:
    """A directory of documents, one file per ``(area, name)``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, area: str, name: str) -> Path:
        _check(area, name)
        return self.root / area / f"{name}.pdf"

    def put(self, area: str, name: str, data: bytes) -> None:
        """Store ``data`` durably; the document appears under its name complete or not at all."""
        path = self._path(area, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, area: str, name: str) -> bytes:
        try:
            return self._path(area, name).read_bytes()
        except FileNotFoundError:
            raise DocumentNotFound(f"{area}/{name}") from None

    def chunks(self, area: str, name: str, size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the document in ``size`` pieces, for streaming downloads of large files."""
        try:
            handle = self._path(area, name).open("rb")
        except FileNotFoundError:
            raise DocumentNotFound(f"{area}/{name}") from None
        with handle:
            while piece := handle.read(size):
                yield piece

    def size(self, area: str, name: str) -> int:
        try:
            return self._path(area, name).stat().st_size
        except FileNotFoundError:
            raise DocumentNotFound(f"{area}/{name}") from None

    def delete(self, area: str, name: str) -> None:
        self._path(area, name).unlink(missing_ok=True)


_metadata = MetaData()

documents_table = Table(
    "documents",
    _metadata,
    Column("area", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class DatabaseStore:
    """Documents as rows of the platform's database (migration ``0004_documents``)."""

    def __init__(self, engine: Engine) -> None:
        self._db = engine

    def _where(self, area: str, name: str) -> tuple[object, object]:
        _check(area, name)
        return documents_table.c.area == area, documents_table.c.name == name

    def put(self, area: str, name: str, data: bytes) -> None:
        _check(area, name)
        insert = sqlite_insert if self._db.dialect.name == "sqlite" else postgresql_insert
        statement = insert(documents_table).values(area=area, name=name, size=len(data), data=data)
        statement = statement.on_conflict_do_update(
            index_elements=["area", "name"],
            set_={"size": statement.excluded.size, "data": statement.excluded.data},
        )
        with transaction(self._db) as conn:
            conn.execute(statement)

    def _scalar(self, column: Any, area: str, name: str) -> Any:
        where = self._where(area, name)
        with reading(self._db) as conn:
            value = conn.execute(select(column).where(*where)).scalar()  # type: ignore[arg-type]
        if value is None:
            raise DocumentNotFound(f"{area}/{name}")
        return value

    def get(self, area: str, name: str) -> bytes:
        return bytes(self._scalar(documents_table.c.data, area, name))

    def chunks(self, area: str, name: str, size: int = 1 << 20) -> Iterator[bytes]:
        data = self.get(area, name)
        for offset in range(0, len(data), size):
            yield data[offset : offset + size]

    def size(self, area: str, name: str) -> int:
        return int(self._scalar(documents_table.c.size, area, name))

    def delete(self, area: str, name: str) -> None:
        where = self._where(area, name)
        with transaction(self._db) as conn:
            conn.execute(delete(documents_table).where(*where))  # type: ignore[arg-type]


def open_document_store(location: str, engine: Engine) -> DocumentStore:
    """``database`` for :class:`DatabaseStore` on ``engine``; anything else is a directory."""
    if location == "database":
        return DatabaseStore(engine)
    return DirectoryStore(Path(location))
