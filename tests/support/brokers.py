"""RabbitMQ for integration and e2e tests: a private virtual host per test session.

A vhost of our own keeps queues, messages and dead letters of one run away from any other run
and from whatever else uses the local broker. A broker that is down fails the run loudly.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pika
import pytest

from meterai_common.broker_users import GRANTS, user_definitions
from meterai_common.messaging import declare_topology, topology_definitions

__all__ = [
    "BrokerUsers",
    "amqp_url",
    "broker_users",
    "dead_address",
    "private_vhost",
    "rabbitmqctl",
    "topology_vhost",
]


def rabbitmqctl(*args: str) -> str:
    tool = shutil.which("rabbitmqctl")
    assert tool, "rabbitmqctl is missing: RabbitMQ must be installed for these tests"
    result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def dead_address(amqp_url: str) -> str:
    """``amqp_url`` on a port where nothing listens: how a lost node looks to a client that
    connects (the connection is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return re.sub(r"@127\.0\.0\.1:\d+/", f"@127.0.0.1:{port}/", amqp_url, count=1)


@contextmanager
def private_vhost() -> Iterator[str]:
    """The AMQP URL of a new virtual host on the machine's RabbitMQ, deleted on leaving.

    For a test that counts what its workers did: in the session's shared virtual host a
    worker may also take tasks an earlier test's platform left queued."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=5).close()
    except OSError as error:
        pytest.fail(
            f"RabbitMQ is not reachable on 127.0.0.1:5672 ({error}); "
            "run `make services` (bash deploy/local/ensure-services.sh)"
        )
    vhost = f"meterai-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def topology_vhost() -> Iterator[tuple[str, pika.BlockingConnection]]:
    """A virtual host of the test's own with the platform's topology declared: its URL and an
    open connection to it, for a test that publishes and reads back."""
    with private_vhost() as url:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            declare_topology(connection.channel())
            yield url, connection
        finally:
            connection.close()


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@dataclass(frozen=True)
class BrokerUsers:
    """A virtual host set up as a deployment sets it up: the platform's definitions imported
    (topology and one least-privilege user per service), nothing declared by the services."""

    vhost: str
    urls: dict[str, str]
    """service (quota, stamping, finishing, signing, admin) → AMQP URL with its own user."""


@pytest.fixture(scope="module")
def broker_users(amqp_url: str) -> Iterator[BrokerUsers]:
    tag = uuid.uuid4().hex[:8]
    vhost = f"meterai-users-{tag}"
    prefix = f"meterai-{tag}-"
    passwords = {service: secrets.token_urlsafe(16) for service in GRANTS}
    definitions = {
        **user_definitions(passwords, vhost=vhost, prefix=prefix),
        **topology_definitions(vhost=vhost),
        "vhosts": [{"name": vhost}],
    }
    # The broker runs as its own user: the file must be readable to it for the import, and is
    # removed right after (it holds only this test's throw-away users).
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        path = os.path.join(directory, "definitions.json")
        with open(path, "w") as out:
            json.dump(definitions, out)
        os.chmod(path, 0o644)
        rabbitmqctl("import_definitions", path)
    try:
        yield BrokerUsers(
            vhost,
            {
                service: f"amqp://{prefix}{service}:{password}@127.0.0.1:5672/{vhost}"
                for service, password in passwords.items()
            },
        )
    finally:
        for service in GRANTS:
            rabbitmqctl("delete_user", prefix + service)
        rabbitmqctl("delete_vhost", vhost)
