"""API key lifecycle through the quota service's operator RPCs, on SQLite and PostgreSQL, with
two quota servers on one database standing for two processes: a revoked key is refused by the
other server on its very next call, a rotated key lives exactly its grace period, and nothing
but a key's hash is ever stored."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

import meterai_quota as quota
from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai_cli.client import Platform
from meterai_common.bus import InProcessBus
from meterai_common.config import Ports, Settings
from meterai_common.db import create_engine, run_in_transaction
from meterai_common.runtime import InProcessTransport
from meterai_common.tls import TlsFiles
from meterai_quota.adapters.payments import GatewayPaymentProvider
from meterai_quota.adapters.tables import api_keys
from meterai_quota.bootstrap import QuotaRuntime, create_principal, start_quota


@dataclass
class World:
    db: Engine
    servers: list[QuotaRuntime]
    operator_key: str
    reseller_id: str
    reseller_key: str
    tls: TlsFiles

    def stub(self, server: int = 0) -> quota_pb2_grpc.QuotaServiceStub:
        platform = Platform(
            "127.0.0.1",
            Ports(quota=self.servers[server].server.port),
            None,
            tls=self.tls.client(),
        )
        return quota_pb2_grpc.QuotaServiceStub(platform.channel("quota"))

    def call(self, method: str, request: Any, key: str, server: int = 0) -> Any:
        return getattr(self.stub(server), method)(
            request, metadata=(("x-api-key", key),), timeout=10
        )

    def balance(self, key: str, server: int = 0) -> Any:
        return self.call("GetBalance", quota_pb2.GetBalanceRequest(), key, server)


@pytest.fixture
def world(database_url: str, tmp_path: Path, tls_files: TlsFiles) -> Iterator[World]:
    db = create_engine(database_url)
    settings = Settings.from_env(
        {
            "METERAI_HOME": str(tmp_path),
            "METERAI_TLS_DIR": str(tls_files.directory),
            "DATABASE_URL": database_url,
            "QUOTA_PORT": "0",
            "QUOTA_MTLS_PORT": "0",
        }
    )
    bus = InProcessBus()
    servers = [
        start_quota(settings, db, InProcessTransport(bus), GatewayPaymentProvider())
        for _ in range(2)
    ]

    def principals(conn: Any) -> tuple[str, str, str]:
        _, operator_key = create_principal(conn, "operator", operator=True)
        reseller_id, reseller_key = create_principal(conn, f"Toko Kunci {uuid.uuid4().hex[:8]}")
        assert reseller_id is not None
        return operator_key, reseller_id, reseller_key

    operator_key, reseller_id, reseller_key = run_in_transaction(db, principals)
    try:
        yield World(db, servers, operator_key, reseller_id, reseller_key, tls_files)
    finally:
        for server in servers:
            server.stop(0)
        bus.stop()
        db.dispose()


def _status(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value.code()


def test_a_revoked_key_is_refused_by_another_server_on_its_very_next_call(world: World) -> None:
    world.balance(world.reseller_key, server=1)  # known to server 1, as under load
    revoked = world.call(
        "RevokeApiKey",
        quota_pb2.RevokeApiKeyRequest(key_id=quota.key_id_of(world.reseller_key)),
        world.operator_key,
        server=0,
    )
    assert not revoked.active and revoked.HasField("revoked_at")
    with pytest.raises(grpc.RpcError) as refused:
        world.balance(world.reseller_key, server=1)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (refused.value.details() or "")


def test_revoking_twice_changes_nothing(world: World) -> None:
    key_id = quota.key_id_of(world.reseller_key)
    request = quota_pb2.RevokeApiKeyRequest(key_id=key_id)
    first = world.call("RevokeApiKey", request, world.operator_key)
    second = world.call("RevokeApiKey", request, world.operator_key)
    assert first.revoked_at == second.revoked_at


def test_a_rotated_key_works_until_its_grace_period_ends(world: World) -> None:
    rotated = world.call(
        "RotateApiKey",
        quota_pb2.RotateApiKeyRequest(
            key_id=quota.key_id_of(world.reseller_key), grace_period_seconds=3600
        ),
        world.operator_key,
    )
    assert rotated.api_key.startswith("mtk_") and rotated.api_key != world.reseller_key
    assert rotated.key.reseller_id == world.reseller_id
    assert rotated.key.prefix == rotated.api_key[:12]
    ends = rotated.retiring.expires_at.ToDatetime(UTC)
    assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=1)
    world.balance(world.reseller_key, server=1)  # the old key still works in its grace period
    world.balance(rotated.api_key, server=1)
    with world.db.connect() as conn:
        before_end = quota.authenticate(conn, world.reseller_key, now=ends - timedelta(seconds=1))
        assert before_end.reseller_id == world.reseller_id
        with pytest.raises(quota.Unauthenticated):
            quota.authenticate(conn, world.reseller_key, now=ends)
        assert quota.authenticate(conn, rotated.api_key, now=ends).reseller_id == world.reseller_id


def test_a_rotation_without_grace_ends_the_old_key_at_once(world: World) -> None:
    rotated = world.call(
        "RotateApiKey",
        quota_pb2.RotateApiKeyRequest(key_id=quota.key_id_of(world.reseller_key)),
        world.operator_key,
    )
    assert not rotated.retiring.active
    assert _status(lambda: world.balance(world.reseller_key, server=1)) is (
        grpc.StatusCode.UNAUTHENTICATED
    )
    world.balance(rotated.api_key, server=1)


def test_a_revoked_key_cannot_be_rotated(world: World) -> None:
    key_id = quota.key_id_of(world.reseller_key)
    world.call("RevokeApiKey", quota_pb2.RevokeApiKeyRequest(key_id=key_id), world.operator_key)
    with pytest.raises(grpc.RpcError) as refused:
        world.call("RotateApiKey", quota_pb2.RotateApiKeyRequest(key_id=key_id), world.operator_key)
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "keys create" in (refused.value.details() or "")


def test_a_grace_period_beyond_thirty_days_is_refused(world: World) -> None:
    request = quota_pb2.RotateApiKeyRequest(
        key_id=quota.key_id_of(world.reseller_key), grace_period_seconds=31 * 86400
    )
    assert _status(lambda: world.call("RotateApiKey", request, world.operator_key)) is (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    world.balance(world.reseller_key)  # nothing changed


def test_a_created_key_acts_for_its_reseller_at_once(world: World) -> None:
    created = world.call(
        "CreateApiKey",
        quota_pb2.CreateApiKeyRequest(reseller_id=world.reseller_id),
        world.operator_key,
    )
    assert created.key.role == quota_pb2.API_KEY_ROLE_RESELLER and created.key.active
    assert created.key.key_id == quota.key_id_of(created.api_key)
    world.balance(created.api_key, server=1)


def test_bad_key_requests_say_what_to_fix(world: World) -> None:
    cases = [
        (quota_pb2.RevokeApiKeyRequest(key_id="not-an-id"), "RevokeApiKey", "INVALID_ARGUMENT"),
        (quota_pb2.RevokeApiKeyRequest(key_id="0" * 16), "RevokeApiKey", "NOT_FOUND"),
        (quota_pb2.CreateApiKeyRequest(), "CreateApiKey", "INVALID_ARGUMENT"),
        (
            quota_pb2.CreateApiKeyRequest(
                reseller_id=world.reseller_id, role=quota_pb2.API_KEY_ROLE_OPERATOR
            ),
            "CreateApiKey",
            "INVALID_ARGUMENT",
        ),
        (quota_pb2.CreateApiKeyRequest(reseller_id="nobody"), "CreateApiKey", "NOT_FOUND"),
    ]
    for request, method, code in cases:
        assert (
            _status(functools.partial(world.call, method, request, world.operator_key)).name == code
        )


def test_only_operators_manage_keys(world: World) -> None:
    key_id = quota.key_id_of(world.reseller_key)
    for method, request in [
        ("ListApiKeys", quota_pb2.ListApiKeysRequest()),
        ("CreateApiKey", quota_pb2.CreateApiKeyRequest(reseller_id=world.reseller_id)),
        ("RevokeApiKey", quota_pb2.RevokeApiKeyRequest(key_id=key_id)),
        ("RotateApiKey", quota_pb2.RotateApiKeyRequest(key_id=key_id)),
    ]:
        code = _status(functools.partial(world.call, method, request, world.reseller_key))
        assert code is grpc.StatusCode.PERMISSION_DENIED, method
    world.balance(world.reseller_key)


def test_listing_pages_through_keys_newest_first_without_the_keys(world: World) -> None:
    for _ in range(4):
        world.call(
            "CreateApiKey",
            quota_pb2.CreateApiKeyRequest(reseller_id=world.reseller_id),
            world.operator_key,
        )
        time.sleep(0.002)  # distinct creation times on every backend
    world.call(
        "RevokeApiKey",
        quota_pb2.RevokeApiKeyRequest(key_id=quota.key_id_of(world.reseller_key)),
        world.operator_key,
    )
    seen: list[Any] = []
    token = ""
    while True:
        page = world.call(
            "ListApiKeys",
            quota_pb2.ListApiKeysRequest(
                reseller_id=world.reseller_id, page_size=2, page_token=token
            ),
            world.operator_key,
        )
        seen.extend(page.keys)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 4 and all(key.active for key in seen)  # the revoked one is left out
    stamps = [key.created_at.ToDatetime() for key in seen]
    assert stamps == sorted(stamps, reverse=True)
    everything = world.call(
        "ListApiKeys",
        quota_pb2.ListApiKeysRequest(reseller_id=world.reseller_id, include_inactive=True),
        world.operator_key,
    )
    assert len(everything.keys) == 5
    assert world.reseller_key not in str(everything)


def test_keys_are_stored_only_as_their_hash(world: World) -> None:
    created = world.call(
        "CreateApiKey",
        quota_pb2.CreateApiKeyRequest(reseller_id=world.reseller_id),
        world.operator_key,
    )
    with world.db.connect() as conn:
        rows = conn.execute(sa.select(api_keys)).all()
    stored = " ".join(str(value) for row in rows for value in row)
    assert created.api_key not in stored and world.reseller_key not in stored
    assert created.api_key[12:20] not in stored  # only the recognisable prefix is kept
