"""A PostgreSQL server of our own, beside the machine's, for runs that crash their database.

A rehearsal that restarts PostgreSQL in immediate mode (``bench/cpns_day.py``) must not take
down the database every other test and program on the host is using, as it must not touch
the machine's RabbitMQ node. Debian's ``postgresql-common`` makes a second cluster one
command: ``pg_createcluster`` (its own data directory under ``/var/lib/postgresql``, its own
port, trust authentication on loopback as the machine's), ``pg_ctlcluster`` to start, crash
and restart it, ``pg_dropcluster`` to remove it and its data.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

__all__ = ["PostgresCluster", "private_postgres_cluster"]


def _tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    assert found, f"{name} is missing: install Debian's postgresql-common (make system-deps)"
    return found


def _run(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def _version() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir() if p.name.isdigit())
    assert versions, "no PostgreSQL server is installed (/etc/postgresql is empty)"
    return versions[-1]


@dataclass(frozen=True)
class PostgresCluster:
    version: str
    name: str
    port: int

    @property
    def conninfo(self) -> str:
        """libpq URL of the server (append ``/database``)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        """SQLAlchemy URL of one of its databases."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        with psycopg.connect(f"{self.conninfo}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')

    def accepts(self) -> bool:
        try:
            with psycopg.connect(f"{self.conninfo}/postgres", connect_timeout=2) as db:
                db.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def restart_immediate(self, patience_s: float = 60) -> None:
        """Every backend killed mid-transaction and the WAL replayed (crash recovery), as
        after a power cut; returns once the server accepts connections again."""
        self._ctl("restart", "-m", "immediate")
        deadline = time.monotonic() + patience_s
        while not self.accepts():
            assert time.monotonic() < deadline, f"cluster {self.name} did not come back"
            time.sleep(0.2)

    def _ctl(self, action: str, *options: str) -> None:
        _run(
            _tool("pg_ctlcluster"),
            "--skip-systemctl-redirect",
            self.version,
            self.name,
            action,
            *options,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def private_postgres_cluster(prefix: str = "meterai") -> Iterator[PostgresCluster]:
    """A new, running PostgreSQL cluster on a free port; stopped and removed, data and all,
    on leaving."""
    cluster = PostgresCluster(_version(), f"{prefix}_{uuid.uuid4().hex[:8]}", _free_port())
    _run(
        _tool("pg_createcluster"),
        "--port",
        str(cluster.port),
        "--start-conf",
        "manual",
        cluster.version,
        cluster.name,
        "--",
        "--auth=trust",
    )
    try:
        cluster._ctl("start")
        deadline = time.monotonic() + 60
        while not cluster.accepts():
            assert time.monotonic() < deadline, f"cluster {cluster.name} never accepted"
            time.sleep(0.2)
        yield cluster
    finally:
        _run(_tool("pg_dropcluster"), "--stop", cluster.version, cluster.name)
