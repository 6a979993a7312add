"""Document store: where PDFs live while and after they are stamped.

Messages carry job ids and digests, never document bytes; every stamping process reads and
writes documents here instead. The default store is a directory, which serves one host or
several hosts sharing a volume. Writes are atomic (temporary file, fsync, rename) so a crash
never leaves a half-written document under its final name.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DocumentNotFound", "DocumentStore"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class DocumentNotFound(LookupError):
    """No document is stored under that name."""


class DocumentStore:
    """A directory of documents addressed by ``(area, name)``, e.g. ``("stamped", job_id)``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, area: str, name: str) -> Path:
        if not _NAME.match(area) or not _NAME.match(name):
            raise ValueError(f"invalid document address {area!r}/{name!r}")
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
