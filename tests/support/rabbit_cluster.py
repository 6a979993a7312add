"""A three-node RabbitMQ cluster on this machine, started and stopped by the tests themselves.

Each node is a ``rabbitmq-server`` of its own: node name ``meterai-<tag>-a@localhost`` (b, c),
AMQP and Erlang distribution ports of its own, data and logs under one temporary directory,
and an Erlang cookie of its own shared by the three nodes and the ``rabbitmqctl`` calls that
manage them. Nothing here touches the machine's default node (``rabbit@localhost`` on 5672):
the nodes read neither ``/etc/rabbitmq/rabbitmq.conf`` nor ``rabbitmq-env.conf`` (their own
files replace both), their cookie differs from the default node's, so no node of ours can
join it or be joined to it, and they share only epmd, the name server every Erlang node on the
host registers with, where each name is its own entry. The command-line tools get a
distribution port range of their own too, so they do not compete with anyone's
``rabbitmqctl`` for the default range.

The cluster forms with ``rabbitmqctl join_cluster``: the nodes start in parallel as single
nodes, then the second and third join the first. No plugin is enabled (the management plugin
is not needed: ``rabbitmqctl list_queues`` reports each quorum queue's leader and members).

A cluster of one (``size=1``) is a private broker for faults that act on a whole node: a
disk alarm (:meth:`RabbitCluster.disk_alarm`), a short ``consumer_timeout``
(:meth:`RabbitCluster.set_consumer_timeout`); ``advanced_config`` tunes the node at boot.

Used by ``tests/e2e/test_broker_cluster.py``, ``tests/e2e/test_delivery_faults.py`` and
``bench/cpns_day.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.launch import free_port_block

__all__ = ["RabbitCluster", "RabbitNode", "rabbit_cluster"]

_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
"""The server script itself: ``/usr/sbin/rabbitmq-server`` is a wrapper that changes to the
``rabbitmq`` user and the default node's directory, which is what these nodes must not use."""
_CTL_PORTS = 8
"""Distribution ports reserved for concurrent ``rabbitmqctl`` calls on our nodes."""


def _tool(name: str) -> str:
    for candidate in (f"/usr/lib/rabbitmq/bin/{name}", shutil.which(name)):
        if candidate and os.path.exists(candidate):
            return candidate
    raise AssertionError(f"{name} is missing: RabbitMQ must be installed for the cluster tests")


@dataclass
class RabbitNode:
    """One node of the cluster and the process running it."""

    letter: str
    name: str
    """Erlang node name, e.g. ``meterai-a@localhost``."""
    amqp_port: int
    dist_port: int
    base: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.base / "node.pid"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class RabbitCluster:
    """Three (or ``size``) clustered RabbitMQ nodes under ``root``; see the module docstring."""

    root: Path
    size: int = 3
    prefix: str = field(default_factory=lambda: f"meterai-{secrets.token_hex(2)}")
    """Node names are ``<prefix>-a@localhost`` ...: unique per cluster, so two runs on one host
    (a test and a benchmark) never register the same name with epmd."""
    user: str = "guest"
    password: str = "guest"
    nodes: list[RabbitNode] = field(default_factory=list)
    advanced_config: str = ""
    """Erlang terms for every node's ``advanced.config`` (none when empty), e.g.
    ``[{rabbit, [{channel_tick_interval, 1000}]}].``"""
    _ctl_ports: tuple[int, int] = (0, 0)

    # -- addresses ---------------------------------------------------------------------------
    def url_of(self, node: RabbitNode, vhost: str = "%2F") -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{node.amqp_port}/{vhost}"

    def amqp_url(self, vhost: str = "%2F") -> str:
        """Every node's URL, ``;``-separated: what ``AMQP_URL`` is set to for a cluster."""
        return ";".join(self.url_of(node, vhost) for node in self.nodes)

    def node(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if name in (node.name, node.letter))

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> RabbitCluster:
        """Start every node, wait for them, and join the others to the first."""
        self.root.mkdir(parents=True, exist_ok=True)
        base = free_port_block(2 * self.size + _CTL_PORTS)
        self._ctl_ports = (base + 2 * self.size, base + 2 * self.size + _CTL_PORTS - 1)
        cookie = self.root / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20))
        cookie.chmod(0o400)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")
        for index in range(self.size):
            letter = "abcdefghij"[index]
            node = RabbitNode(
                letter,
                f"{self.prefix}-{letter}@localhost",
                amqp_port=base + index,
                dist_port=base + self.size + index,
                base=self.root / letter,
            )
            (node.base / "log").mkdir(parents=True, exist_ok=True)
            (node.base / "rabbitmq.conf").write_text(
                f"listeners.tcp.1 = 127.0.0.1:{node.amqp_port}\n"
                "log.console = false\n"
                "log.file.level = info\n"
                # Nothing reads the statistics: emit them rarely, the host is shared.
                "collect_statistics_interval = 30000\n"
            )
            if self.advanced_config:
                (node.base / "advanced.config").write_text(self.advanced_config)
            self.nodes.append(node)
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            self.await_node(node, timeout)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
            self.await_node(node, timeout)
        return self

    def _env(self, node: RabbitNode) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
        }
        env.update(
            {
                "HOME": str(self.root),
                "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
                "RABBITMQ_NODENAME": node.name,
                "RABBITMQ_USE_LONGNAME": "false",
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(node.amqp_port),
                "RABBITMQ_DIST_PORT": str(node.dist_port),
                "RABBITMQ_MNESIA_BASE": str(node.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(node.base / "log"),
                "RABBITMQ_CONFIG_FILE": str(node.base / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.base / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(node.pid_file),
                "RABBITMQ_CTL_DIST_PORT_MIN": str(self._ctl_ports[0]),
                "RABBITMQ_CTL_DIST_PORT_MAX": str(self._ctl_ports[1]),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                # A VM that crashes (a node, or rabbitmqctl) leaves its dump with the node,
                # not in whatever directory the tests run from.
                "ERL_CRASH_DUMP": str(node.base / "erl_crash.dump"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                    "-kernel inet_dist_use_interface {127,0,0,1}"
                ),
            }
        )
        return env

    def _spawn(self, node: RabbitNode) -> None:
        node.pid_file.unlink(missing_ok=True)
        log = open(node.base / "server.out", "ab")  # noqa: SIM115  (the process keeps it)
        node.process = subprocess.Popen(
            [_tool("rabbitmq-server")],
            env=self._env(node),
            cwd=node.base,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def ctl(self, node: RabbitNode, *args: str, timeout: float = 60, check: bool = True) -> str:
        """``rabbitmqctl -n NODE ARGS`` with the cluster's cookie."""
        result = subprocess.run(
            [_tool("rabbitmqctl"), "-n", node.name, *args],
            env=self._env(node),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"rabbitmqctl -n {node.name} {' '.join(args)} failed: "
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def await_node(self, node: RabbitNode, timeout: float = 120) -> None:
        """Wait until ``node`` runs the broker application (fail with its log if it died)."""
        deadline = time.monotonic() + timeout
        while True:
            if node.process is None or node.process.poll() is not None:
                raise AssertionError(f"{node.name} exited:\n{self.log_tail(node)}")
            result = subprocess.run(
                [_tool("rabbitmqctl"), "-n", node.name, "-q", "await_startup", "--timeout", "10"],
                env=self._env(node),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{node.name} not running after {timeout:.0f} s: {result.stderr}\n"
                    f"{self.log_tail(node)}"
                )
            time.sleep(0.5)

    def log_tail(self, node: RabbitNode, chars: int = 3000) -> str:
        text = ""
        for path in [*sorted(node.base.rglob("*.log")), node.base / "server.out"]:
            if path.exists():
                text += f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}\n"
        return text

    def beam_pid(self, node: RabbitNode) -> int:
        """OS pid of the node's Erlang VM (the server script is only its parent)."""
        deadline = time.monotonic() + 30
        while not node.pid_file.exists() or not node.pid_file.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.name} wrote no pid file")
            time.sleep(0.1)
        return int(node.pid_file.read_text().strip())

    def kill(self, node: RabbitNode) -> None:
        """SIGKILL the node's VM, as a lost machine looks to its peers: no goodbye, no flush.

        Only the VM and the script waiting for it are killed, never the process group: an
        epmd the node may have started belongs to every Erlang node on the host.
        """
        os.kill(self.beam_pid(node), signal.SIGKILL)
        assert node.process is not None
        node.process.wait(30)

    def restart(self, node: RabbitNode, timeout: float = 120) -> None:
        """Start a stopped or killed node again; it rejoins the cluster from its own data."""
        assert not node.running, f"{node.name} is still running"
        self._spawn(node)
        self.await_node(node, timeout)

    def stop(self) -> None:
        """Stop every node still running (``rabbitmqctl stop``, SIGKILL if that hangs)."""
        for node in self.nodes:
            if not node.running:
                continue
            try:
                self.ctl(node, "stop", timeout=60, check=False)
                assert node.process is not None
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                if node.pid_file.exists():
                    os.kill(self.beam_pid(node), signal.SIGKILL)
                assert node.process is not None
                node.process.kill()
                node.process.wait(10)

    # -- what the cluster reports --------------------------------------------------------------
    def running_nodes(self, via: RabbitNode | None = None) -> list[str]:
        via = via or next(node for node in self.nodes if node.running)
        status = json.loads(self.ctl(via, "-q", "cluster_status", "--formatter", "json"))
        return sorted(status["running_nodes"])

    def quorum_queues(self, vhost: str = "/") -> dict[str, dict[str, Any]]:
        """``{queue: {"leader": node, "members": [nodes], "online": [nodes]}}``, asked of a
        running node."""
        via = next(node for node in self.nodes if node.running)
        rows = json.loads(
            self.ctl(
                via,
                "-q",
                "list_queues",
                "-p",
                vhost,
                "name",
                "type",
                "leader",
                "members",
                "online",
                "--formatter",
                "json",
            )
            or "[]"
        )
        return {
            row["name"]: {key: row[key] for key in ("leader", "members", "online")}
            for row in rows
            if row.get("type") == "quorum"
        }

    def queue_messages(self, vhost: str = "/") -> dict[str, int]:
        """Messages in each queue (ready and unacknowledged), asked of a running node."""
        via = next(node for node in self.nodes if node.running)
        rows = json.loads(
            self.ctl(
                via, "-q", "list_queues", "-p", vhost, "name", "messages", "--formatter", "json"
            )
            or "[]"
        )
        return {row["name"]: int(row["messages"] or 0) for row in rows}

    def alarms(self, node: RabbitNode) -> str:
        """The resource alarms in effect on ``node`` (Erlang terms: ``[]`` when none)."""
        return self.ctl(node, "eval", "rabbit_alarm:get_alarms().").strip()

    @contextmanager
    def disk_alarm(self, node: RabbitNode) -> Iterator[None]:
        """A disk alarm on ``node`` for the block's body: the free-disk limit raised far above
        the disk's size, so the node blocks every publishing connection as a full disk would;
        the limit in force before comes back however the block ends."""
        previous = self.ctl(node, "eval", "rabbit_disk_monitor:get_disk_free_limit().").strip()
        self.ctl(node, "set_disk_free_limit", "1000000GB")
        try:
            _poll(lambda: "disk" in self.alarms(node), 30, f"a disk alarm on {node.name}")
            yield
        finally:
            self.ctl(node, "set_disk_free_limit", previous)
            _poll(lambda: "disk" not in self.alarms(node), 60, f"{node.name}'s disk alarm to clear")

    def set_consumer_timeout(self, node: RabbitNode, milliseconds: int) -> None:
        """``consumer_timeout`` for channels opened on ``node`` from now on (a channel reads
        it when it opens): a consumer that holds a delivery longer has its channel closed by
        the broker, and once the client confirms the close, the delivery goes back to the
        queue. The check runs on each channel's tick (``channel_tick_interval``, 60 s unless
        ``advanced_config`` shortens it)."""
        self.ctl(node, "eval", f"application:set_env(rabbit, consumer_timeout, {milliseconds}).")


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@contextmanager
def rabbit_cluster(root: Path, size: int = 3, advanced_config: str = "") -> Iterator[RabbitCluster]:
    """A started cluster under ``root``, stopped however the block ends."""
    cluster = RabbitCluster(root, size, advanced_config=advanced_config)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
