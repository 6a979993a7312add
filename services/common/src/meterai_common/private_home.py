"""Everything the platform keeps under ``$METERAI_HOME`` is private to the user running it.

The home holds the embedded database, signing keys and certificates, API key credentials,
stamped documents and the files clients use to find the platform: nothing another local user
should read. Every platform entry point calls :func:`make_home_private` first. It sets a umask
of ``077``, so whatever the process creates afterwards (SQLite's database and journal files,
PEM files, documents, logs) is born ``0600`` in ``0700`` folders, with no window in which it is
readable; and it tightens what an older version left behind, so existing homes are fixed on the
next start.

Entries that cannot be changed are left alone and reported: a read-only mount (a Kubernetes
secret) or a file owned by someone else is not ours to fix. Symbolic links are never followed,
so a link in the home cannot make the platform chmod something outside it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "PRIVATE_UMASK", "make_home_private"]

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_home_private(home: Path) -> list[Path]:
    """Set the process umask to ``077``, create ``home`` as ``0700`` if missing, and take group
    and other permissions off ``home`` and every folder and file beneath it.

    :returns: the entries that could not be tightened (each is also logged as a warning).
    """
    os.umask(PRIVATE_UMASK)
    home.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    stuck: list[Path] = []
    _tighten(home, stuck)
    for root, dirs, files in os.walk(home):  # does not descend into linked folders
        for name in (*dirs, *files):
            _tighten(Path(root, name), stuck)
    for path in stuck:
        log.warning("%s stays readable by others: it cannot be changed by this user", path)
    return stuck


def _tighten(path: Path, stuck: list[Path]) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return  # removed meanwhile (a document moved by a finisher)
    if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
        return
    # Only group and other lose their bits: the owner's stay as they were (what the platform
    # creates itself is 0600 and 0700 through the umask).
    try:
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~PRIVATE_UMASK)
    except FileNotFoundError:
        return
    except OSError:
        stuck.append(path)
