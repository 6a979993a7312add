"""The quota domain: serial format, money, ledger and order rules, value objects and errors.

Nothing here does I/O; the modules beside ``domain/`` apply these rules to the database.
"""

from __future__ import annotations

__all__: list[str] = []
