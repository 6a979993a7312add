"""Where the shared real-world PDF corpus lives: ``shared/`` beside the project root, for
developers and CI alike (see its MANIFEST.md for the expected outcome of each file)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CORPUS"]

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "pdf-corpus"
