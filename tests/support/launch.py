"""Runs the platform as real OS processes for end-to-end tests, and the CLI against it.

:class:`EmbeddedPlatform` is ``meterai up`` in its own process; :class:`DistributedPlatform`
is ``meterai serve quota|stamping|signing|verify`` plus ``meterai worker signing``, each a
separate process on PostgreSQL and RabbitMQ, configured only by environment variables, exactly
as an operator would run them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CliResult", "DistributedPlatform", "EmbeddedPlatform", "free_port_block"]

METERAI = str(Path(sys.executable).with_name("meterai"))


def free_port_block(count: int = 4) -> int:
    """A base port such that base .. base+count-1 are free right now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65000:
            continue
        sockets = []
        try:
            for offset in range(count):
                s = socket.socket()
                s.bind(("127.0.0.1", base + offset))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports")


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.stdout)
        return data


@dataclass
class _Platform:
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        # Private like everything else under the home (the platform's processes make it so
        # on start, this just avoids a window).
        fd = os.open(self.home / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        log = os.fdopen(fd, "ab")
        process = subprocess.Popen(
            [METERAI, *args],
            env=self.env if env is None else env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def cli(self, *args: str, api_key: str | None = None, timeout: float = 120) -> CliResult:
        env = dict(self.env)
        if api_key is not None:
            env["METERAI_API_KEY"] = api_key
        result = subprocess.run(
            [METERAI, *self.cli_args(), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.home,
        )
        return CliResult(result.returncode, result.stdout, result.stderr)

    def cli_args(self) -> list[str]:
        return []

    def wait_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode}:\n{self.log(name)}"
                    )
            result = self.cli("status", timeout=30)
            if result.code == 0:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.processes)
                raise RuntimeError(
                    f"platform not serving after {timeout}s:\n{result.stdout}\n{logs}"
                )
            time.sleep(0.3)

    def stop(self, name: str | None = None, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        names = [name] if name else list(self.processes)
        for key in names:
            process = self.processes[key]
            if process.poll() is None:
                os.killpg(process.pid, sig)
        for key in names:
            process = self.processes[key]
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


class EmbeddedPlatform(_Platform):
    """``meterai up`` with a fresh ``METERAI_HOME``."""

    def start(self, extra_env: dict[str, str] | None = None) -> EmbeddedPlatform:
        """:param extra_env: variables set on top (webhook back-off tuned short, say)."""
        self.env = {
            **os.environ,
            "METERAI_HOME": str(self.home),
            # `meterai up` records its home in the user's config: a test's, never the real one.
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "QUOTA_PORT": "0",
            "STAMPING_PORT": "0",
            "SIGNING_PORT": "0",
            "VERIFY_PORT": "0",
            "QUOTA_MTLS_PORT": "0",
            "STAMPING_MTLS_PORT": "0",
            "WEB_PORT": "0",
        }
        for variable in (
            "DATABASE_URL",
            "AMQP_URL",
            "METERAI_SERVER",
            "METERAI_API_KEY",
            "METERAI_INSECURE",
        ):
            self.env.pop(variable, None)
        self.env.update(extra_env or {})
        self._spawn("up", "up")
        deadline = time.monotonic() + 60
        while not (self.home / "platform.json").exists():
            if self.processes["up"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"meterai up did not start:\n{self.log('up')}")
            time.sleep(0.1)
        self.wait_serving()
        return self


class DistributedPlatform(_Platform):
    """Every service in its own process on PostgreSQL + RabbitMQ, N signing workers."""

    base_port: int = 0
    broker_users: dict[str, str] | None = None
    """Process kind → its own AMQP URL (least-privilege users); None: one URL for all."""

    def start(
        self,
        database_url: str,
        amqp_url: str,
        workers: int = 1,
        extra_env: dict[str, str] | None = None,
        broker_users: dict[str, str] | None = None,
    ) -> DistributedPlatform:
        """Initialise the PKI and schema, spawn every service and ``workers`` signing workers.

        :param extra_env: variables set on top of the defaults above (benchmarks tune
            admission limits and the payment provider with it).
        :param broker_users: each process kind (quota, stamping, finishing, signing) gets its
            own AMQP URL, as a deployment does; ``serve signing`` and ``serve verify`` then get
            none, since they use no broker. ``amqp_url`` stays the CLI's (the operator's).
        """
        self.broker_users = broker_users
        self.base_port = free_port_block(6)
        self.env = {
            **os.environ,
            "METERAI_HOME": str(self.home),
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "QUOTA_PORT": str(self.base_port),
            "STAMPING_PORT": str(self.base_port + 1),
            "SIGNING_PORT": str(self.base_port + 2),
            "VERIFY_PORT": str(self.base_port + 3),
            "QUOTA_MTLS_PORT": str(self.base_port + 4),
            "STAMPING_MTLS_PORT": str(self.base_port + 5),
            "METERAI_PAYMENT_PROVIDER": "gateway",
        }
        for variable in ("METERAI_SERVER", "METERAI_API_KEY", "METERAI_INSECURE"):
            self.env.pop(variable, None)
        self.env.update(extra_env or {})
        result = self.cli("admin", "init-pki")
        assert result.code == 0, result.stderr
        result = self.cli("admin", "migrate")
        assert result.code == 0, result.stderr
        for service in ("quota", "signing", "stamping", "verify"):
            self._spawn(service, "serve", service, env=self._env_of(service))
        for index in range(workers):
            self.add_worker(f"worker-{index}")
        self.wait_serving()
        return self

    def add_stamping(self, name: str, extra_env: dict[str, str] | None = None) -> int:
        """One more stamping service process on its own port (stamping is stateless: any
        number share the database, broker and document store); returns the port.

        :param extra_env: settings of this process alone, e.g. ``METERAI_STAMPING_FINISHERS``."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            mtls_port = int(probe.getsockname()[1])
        env = {
            **self._env_of("stamping"),
            "STAMPING_PORT": str(port),
            "STAMPING_MTLS_PORT": str(mtls_port),
            **(extra_env or {}),
        }
        self._spawn(name, "serve", "stamping", env=env)
        return port

    def add_web(self, name: str = "web", timeout: float = 60) -> int:
        """A ``meterai serve web`` process (the verification site, on the same database) on a
        port of its own choosing (no race for a port probed free); returns it once serving."""
        process = self._spawn(name, "serve", "web", env={**self._env_of("verify"), "WEB_PORT": "0"})
        deadline = time.monotonic() + timeout
        while True:
            serving = re.search(r"web serving on port (\d+)", self.log(name))
            if serving:
                return int(serving.group(1))
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not serving after {timeout}s:\n{self.log(name)}")
            time.sleep(0.2)

    def add_worker(self, name: str, concurrency: int = 1) -> None:
        env = self._env_of("signing-worker")
        self._spawn(name, "worker", "signing", "--concurrency", str(concurrency), env=env)

    def add_finisher(self, name: str, concurrency: int = 4) -> None:
        """A ``meterai worker finishing`` process (for stamping services with finishers off)."""
        env = self._env_of("finishing")
        self._spawn(name, "worker", "finishing", "--concurrency", str(concurrency), env=env)

    def add_webhooks(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        """A ``meterai worker webhooks`` process (its own broker user with ``broker_users``)."""
        self._spawn(
            name, "worker", "webhooks", env={**self._env_of("webhooks"), **(extra_env or {})}
        )

    def _env_of(self, kind: str) -> dict[str, str]:
        if self.broker_users is None:
            return self.env
        env = {key: value for key, value in self.env.items() if key != "AMQP_URL"}
        user = {"signing-worker": "signing", "signing": None, "verify": None}.get(kind, kind)
        if user is not None:
            env["AMQP_URL"] = self.broker_users[user]
        return env

    def cli_args(self) -> list[str]:
        return ["--server", f"127.0.0.1:{self.base_port}"] if self.base_port else []
