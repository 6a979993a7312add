"""Where the CLI looks for the platform when nothing says: the user's config file.

``meterai up`` (and so ``make run``) records its ``METERAI_HOME`` in
``$XDG_CONFIG_HOME/meterai/config.json`` (``~/.config/meterai/config.json`` by default), so a
``meterai`` started from any folder finds the running platform's address, CA and demo key, not
only one started from the checkout. An explicit ``--home``/``METERAI_HOME`` always wins, then a
``.meterai`` folder in the current directory, then this file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DEFAULT_HOME", "config_path", "recorded_home", "remember_home", "resolve_home"]

DEFAULT_HOME = Path(".meterai")


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The user's meterai config file, honouring ``XDG_CONFIG_HOME``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "meterai" / "config.json"


def recorded_home(environ: Mapping[str, str] | None = None) -> Path | None:
    """The home the last ``meterai up`` recorded, if the file is there and readable."""
    try:
        data = json.loads(config_path(environ).read_text())
    except (OSError, ValueError):
        return None
    home = data.get("home") if isinstance(data, dict) else None
    return Path(home) if isinstance(home, str) and home else None


def remember_home(home: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Record ``home`` as the platform this user's CLI talks to by default (mode 0600)."""
    path = config_path(environ)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"home": str(home.absolute())}, handle, indent=2)
    return path


def resolve_home(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """``explicit`` if given, else ``./.meterai`` if it exists, else the recorded home, else
    ``./.meterai`` (where ``meterai up`` will create it)."""
    if explicit is not None:
        return explicit.absolute()
    if DEFAULT_HOME.is_dir():
        return DEFAULT_HOME.absolute()
    recorded = recorded_home(environ)
    if recorded is not None and recorded.is_dir():
        return recorded
    return DEFAULT_HOME.absolute()
