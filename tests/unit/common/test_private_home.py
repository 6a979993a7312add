"""``make_home_private``: what the platform keeps under its home is for its user alone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterai_common.private_home import PRIVATE_UMASK, make_home_private


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_creates_a_missing_home_as_0700(tmp_path: Path) -> None:
    home = tmp_path / "a" / "home"
    make_home_private(home)
    assert _mode(home) == 0o700


def test_files_created_afterwards_are_0600_in_0700_folders(tmp_path: Path) -> None:
    make_home_private(tmp_path)
    (tmp_path / "documents" / "prepared").mkdir(parents=True)
    (tmp_path / "documents" / "prepared" / "a.pdf").write_bytes(b"%PDF-")
    assert _mode(tmp_path / "documents") == 0o700
    assert _mode(tmp_path / "documents" / "prepared") == 0o700
    assert _mode(tmp_path / "documents" / "prepared" / "a.pdf") == 0o600
    current = os.umask(0)
    os.umask(current)
    assert current == PRIVATE_UMASK


def test_tightens_what_an_older_version_left_readable(tmp_path: Path) -> None:
    os.umask(0o022)
    (tmp_path / "pki").mkdir(mode=0o755)
    (tmp_path / "pki" / "signer.key").write_bytes(b"key")
    (tmp_path / "meterai.db").write_bytes(b"db")
    (tmp_path / "meterai.db").chmod(0o666)
    assert make_home_private(tmp_path) == []
    assert _mode(tmp_path) == 0o700
    assert _mode(tmp_path / "pki") == 0o700
    assert _mode(tmp_path / "pki" / "signer.key") == 0o600
    assert _mode(tmp_path / "meterai.db") == 0o600


def test_never_follows_a_link_out_of_the_home(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    (outside / "shared.txt").write_bytes(b"x")
    (outside / "shared.txt").chmod(0o644)
    outside.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    (home / "link-dir").symlink_to(outside)
    (home / "link-file").symlink_to(outside / "shared.txt")
    make_home_private(home)
    assert _mode(outside) == 0o755
    assert _mode(outside / "shared.txt") == 0o644
