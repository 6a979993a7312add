"""RabbitMQ for integration and e2e tests: a private virtual host per test session.

A vhost of our own keeps queues, messages and dead letters of one run away from any other run
and from whatever else uses the local broker. A broker that is down fails the run loudly.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest

__all__ = ["amqp_url", "rabbitmqctl"]


def rabbitmqctl(*args: str) -> str:
    tool = shutil.which("rabbitmqctl")
    assert tool, "rabbitmqctl is missing: RabbitMQ must be installed for these tests"
    result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=5).close()
    except OSError as error:
        pytest.fail(
            f"RabbitMQ is not reachable on 127.0.0.1:5672 ({error}); "
            "run `make services` (bash deploy/local/ensure-services.sh)"
        )
    vhost = f"meterai-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    rabbitmqctl("delete_vhost", vhost)
