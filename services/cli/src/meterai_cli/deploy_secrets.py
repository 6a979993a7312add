"""One folder of credentials per process kind, for deployments that mount files (compose).

``meterai admin deploy-secrets DIR`` writes::

    DIR/ca/                      the platform CA and every certificate (stays with the operator)
    DIR/<identity>/tls/          ca.crt + that identity's certificate and key, nothing else
    DIR/<identity>/amqp.password that identity's broker password (broker users only)
    DIR/rabbitmq/definitions.json topology + users with password hashes, for load_definitions

so each container mounts exactly its own folder read-only: the stamping container cannot read
the signing tier's broker password, and no container sees the CA key. Existing files are
kept (running it again never rotates a credential in use); delete a file to renew it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

from meterai_common.broker_users import GRANTS, user_definitions
from meterai_common.messaging import topology_definitions
from meterai_common.tls import TlsFiles, ensure_platform_tls

__all__ = ["IDENTITIES", "write_deploy_secrets"]

IDENTITIES = ("quota", "stamping", "finishing", "signing", "verify", "web", "admin")
"""Process identities that get a folder (``signing`` serves both the gRPC service and the
workers; only the workers use its broker password)."""


def _private_copy(source: Path, target: Path) -> None:
    if not target.exists():
        shutil.copyfile(source, target)
    target.chmod(0o600)


def _password(path: Path) -> str:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().splitlines()[0].strip()


def _chown_tree(path: Path, owner: int) -> None:
    os.chown(path, owner, owner)
    for child in path.rglob("*"):
        os.chown(child, owner, owner)


def write_deploy_secrets(
    directory: Path,
    hosts: Iterable[str] = (),
    *,
    owner: int | None = None,
    broker_owner: int | None = None,
) -> list[Path]:
    """Write (or complete) the credential folders; return the folders written.

    :param owner: uid (and gid) the service folders are given to: the containers' user
        (10001 in ``deploy/Dockerfile``); needs root. Files stay 0600 in 0700 folders.
    :param broker_owner: the same for ``DIR/rabbitmq`` (999 in the rabbitmq image).
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = ensure_platform_tls(directory / "ca", hosts)
    written = []
    passwords = {}
    for identity in IDENTITIES:
        folder = directory / identity
        tls = folder / "tls"
        tls.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        own = TlsFiles(tls)
        _private_copy(files.ca_certificate, own.ca_certificate)
        _private_copy(files.certificate(identity), own.certificate(identity))
        _private_copy(files.key(identity), own.key(identity))
        if identity in GRANTS:
            passwords[identity] = _password(folder / "amqp.password")
        if owner is not None:
            _chown_tree(folder, owner)
        written.append(folder)
    for service in GRANTS:  # broker users that are no platform process (KEDA's scaler)
        if service not in passwords:
            folder = directory / service
            folder.mkdir(mode=0o700, exist_ok=True)
            passwords[service] = _password(folder / "amqp.password")
            written.append(folder)
    broker = directory / "rabbitmq"
    broker.mkdir(mode=0o700, exist_ok=True)
    definitions = {
        **user_definitions(passwords),
        "vhosts": [{"name": "/"}],
        **topology_definitions(),
    }
    target = broker / "definitions.json"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(definitions, out, indent=2)
    if broker_owner is not None:
        _chown_tree(broker, broker_owner)
    written.append(broker)
    return written
