"""``docker-compose.yml`` read as a policy: each container mounts only its own credentials,
read-only, talks to the broker as its own user (or not at all), and only the public services
publish ports. (``docker compose config`` validates the syntax where Docker Compose exists.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meterai_common.broker_users import GRANTS

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[3] / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]

KINDS = {  # container → (credential folder, broker user or None)
    "quota": ("quota", "quota"),
    "stamping": ("stamping", "stamping"),
    "finishing-worker": ("finishing", "finishing"),
    "webhooks-worker": ("webhooks", "webhooks"),
    "signing": ("signing", None),
    "signing-worker": ("signing", "signing"),
    "verify": ("verify", None),
    "web": ("web", None),
    "cli": ("admin", "admin"),
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_container_mounts_only_its_own_credentials_read_only(name: str) -> None:
    folder, _ = KINDS[name]
    secrets = [v for v in SERVICES[name]["volumes"] if "deploy/secrets" in v]
    assert secrets == [f"./deploy/secrets/{folder}:/run/meterai:ro"]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_container_uses_its_own_broker_user_or_none(name: str) -> None:
    _, user = KINDS[name]
    url = SERVICES[name]["environment"].get("AMQP_URL")
    if user is None:
        assert url is None
        return
    assert user in GRANTS
    assert url.startswith(f"amqp://meterai-{user}@"), "no password in the URL: it is a file"


def test_only_the_public_services_publish_ports() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"quota", "stamping", "verify", "web"}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_only_serving_containers_bind_beyond_loopback(name: str) -> None:
    binds = SERVICES[name]["environment"].get("GRPC_HOST") == "0.0.0.0"
    assert binds == (name in ("quota", "stamping", "signing", "verify", "web"))


def test_containers_run_read_only_without_capabilities() -> None:
    base = COMPOSE["x-meterai"]
    assert base["read_only"] is True
    assert base["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in base["security_opt"]


def test_the_broker_loads_the_platforms_users_and_creates_no_default_user() -> None:
    broker = SERVICES["rabbitmq"]
    assert "RABBITMQ_DEFAULT_USER" not in broker.get("environment", {})
    assert any("definitions.json" in v for v in broker["volumes"])
