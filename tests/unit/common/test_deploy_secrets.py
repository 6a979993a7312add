"""``meterai admin deploy-secrets``: one private folder per process kind, holding only its own
credentials, and broker definitions whose hashes match the passwords handed out."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

from meterai_cli.deploy_secrets import IDENTITIES, write_deploy_secrets
from meterai_common.broker_users import GRANTS


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_identity_gets_only_its_own_credentials(tmp_path: Path) -> None:
    write_deploy_secrets(tmp_path / "secrets")
    for identity in IDENTITIES:
        folder = tmp_path / "secrets" / identity
        names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        expected = {"tls/ca.crt", f"tls/{identity}.crt", f"tls/{identity}.key"}
        if identity in GRANTS:
            expected.add("amqp.password")
        assert names == expected, identity
        assert not (folder / "tls" / "ca.key").exists()


def test_everything_is_private(tmp_path: Path) -> None:
    write_deploy_secrets(tmp_path / "secrets")
    for path in (tmp_path / "secrets").rglob("*"):
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_broker_definitions_match_the_passwords_handed_out(tmp_path: Path) -> None:
    write_deploy_secrets(tmp_path / "secrets")
    definitions = json.loads((tmp_path / "secrets" / "rabbitmq" / "definitions.json").read_text())
    hashes = {
        user["name"]: base64.b64decode(user["password_hash"]) for user in definitions["users"]
    }
    for service in GRANTS:
        password = (tmp_path / "secrets" / service / "amqp.password").read_text().strip()
        stored = hashes[f"meterai-{service}"]
        assert hashlib.sha256(stored[:4] + password.encode()).digest() == stored[4:], service


def test_running_it_again_keeps_every_credential(tmp_path: Path) -> None:
    write_deploy_secrets(tmp_path / "secrets")
    before = {p: p.read_bytes() for p in (tmp_path / "secrets").rglob("*") if p.is_file()}
    write_deploy_secrets(tmp_path / "secrets")
    for path, content in before.items():
        if path.name != "definitions.json":  # re-salted, same passwords
            assert path.read_bytes() == content, path
