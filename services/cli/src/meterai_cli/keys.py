"""``meterai admin keys``: list, create, revoke and rotate API keys through the quota service.

These call the operator RPCs, so they work against any running platform, embedded or
distributed, and a revocation is in force in every process as soon as the command returns. The
operator key comes from ``--api-key``/``METERAI_API_KEY``, else from the ``operator_key`` that
``meterai up`` leaves in ``$METERAI_HOME/credentials.json``.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import click
import grpc

from meterai.quota.v1 import quota_pb2, quota_pb2_grpc
from meterai_cli.client import Platform, credentials_path
from meterai_cli.output import emit, fail_rpc, message_dict

__all__ = ["keys", "parse_duration"]

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``24h``, ``7d`` as a :class:`timedelta`."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(
            f"expected a duration such as 0, 90s, 15m, 24h or 7d, not {text!r}"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _stub(obj: Any) -> tuple[quota_pb2_grpc.QuotaServiceStub, Platform, float]:
    """The quota stub with the operator's key, from the root command's context object."""
    api_key = obj.api_key
    path = credentials_path(obj.home)
    if api_key is None and path.exists():
        api_key = json.loads(path.read_text()).get("operator_key")
    if api_key is None:
        raise click.UsageError(
            "these commands need an operator API key: pass --api-key or set METERAI_API_KEY"
        )
    platform = Platform.discover(obj.home, obj.server, api_key, obj.timeout)
    return quota_pb2_grpc.QuotaServiceStub(platform.channel("quota")), platform, obj.timeout


def _key_id(value: str) -> str:
    """A key id as listed, or a whole key (whose id is computed here, the key never sent)."""
    from meterai_quota.api_keys import API_KEY_PREFIX, key_id_of

    return key_id_of(value) if value.startswith(API_KEY_PREFIX) else value


def _line(key: Any) -> str:
    role = quota_pb2.ApiKeyRole.Name(key.role).removeprefix("API_KEY_ROLE_").lower()
    state = "active" if key.active else ("revoked" if key.HasField("revoked_at") else "expired")
    ends = (
        f"  ends {key.expires_at.ToDatetime().isoformat()}Z" if key.HasField("expires_at") else ""
    )
    return (
        f"{key.key_id}  {(key.prefix or '?') + '…':<14} {role:<9} {state:<8} "
        f"{key.reseller_id or '-':<36}{ends}"
    )


@click.group()
def keys() -> None:
    """API keys: list, create, revoke, rotate (operator key; calls the quota service)."""


@keys.command("list")
@click.option("--reseller", default="", help="Only this reseller's keys.")
@click.option("--all", "include_inactive", is_flag=True, help="Also revoked and expired keys.")
@click.option("--page-size", default=20, show_default=True)
@click.option("--page-token", default="")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def keys_list(
    obj: Any, reseller: str, include_inactive: bool, page_size: int, page_token: str, as_json: bool
) -> None:
    """Keys, newest first: id, first characters, role, state, reseller."""
    stub, platform, timeout = _stub(obj)
    try:
        page = stub.ListApiKeys(
            quota_pb2.ListApiKeysRequest(
                reseller_id=reseller,
                include_inactive=include_inactive,
                page_size=page_size,
                page_token=page_token,
            ),
            metadata=platform.metadata(),
            timeout=timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "listing API keys failed")
    if as_json:
        emit(message_dict(page), True)
        return
    for key in page.keys:
        click.echo(_line(key))
    if page.next_page_token:
        click.echo(f"more: --page-token {page.next_page_token}")


@keys.command("create")
@click.option("--reseller", default="", help="The reseller the key acts for.")
@click.option("--operator", is_flag=True, help="An operator key instead (no reseller).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def keys_create(obj: Any, reseller: str, operator: bool, as_json: bool) -> None:
    """Issue a key and print it, shown only this once."""
    if bool(reseller) == operator:
        raise click.UsageError("give either --reseller ID or --operator")
    stub, platform, timeout = _stub(obj)
    role = quota_pb2.API_KEY_ROLE_OPERATOR if operator else quota_pb2.API_KEY_ROLE_RESELLER
    try:
        created = stub.CreateApiKey(
            quota_pb2.CreateApiKeyRequest(reseller_id=reseller, role=role),
            metadata=platform.metadata(),
            timeout=timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "creating an API key failed")
    if as_json:
        emit(message_dict(created), True)
    else:
        click.echo(_line(created.key))
        click.echo(f"api_key: {created.api_key}  (shown only this once)")


@keys.command("revoke")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def keys_revoke(obj: Any, key: str, as_json: bool) -> None:
    """Refuse KEY (a key id, or the key itself) from the next call on, everywhere."""
    stub, platform, timeout = _stub(obj)
    try:
        revoked = stub.RevokeApiKey(
            quota_pb2.RevokeApiKeyRequest(key_id=_key_id(key)),
            metadata=platform.metadata(),
            timeout=timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "revoking the API key failed")
    if as_json:
        emit(message_dict(revoked), True)
    else:
        click.echo(_line(revoked))


@keys.command("rotate")
@click.argument("key")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    help="How long the old key keeps working: 0, 90s, 15m, 24h, 7d (at most 30d).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def keys_rotate(obj: Any, key: str, grace: str, as_json: bool) -> None:
    """Issue a new key for KEY's reseller and role; KEY keeps working for the grace period."""
    period = parse_duration(grace)
    stub, platform, timeout = _stub(obj)
    try:
        rotated = stub.RotateApiKey(
            quota_pb2.RotateApiKeyRequest(
                key_id=_key_id(key), grace_period_seconds=int(period.total_seconds())
            ),
            metadata=platform.metadata(),
            timeout=timeout,
        )
    except grpc.RpcError as error:
        fail_rpc(error, "rotating the API key failed")
    if as_json:
        emit(message_dict(rotated), True)
    else:
        click.echo(f"old {_line(rotated.retiring)}")
        click.echo(f"new {_line(rotated.key)}")
        click.echo(f"api_key: {rotated.api_key}  (shown only this once)")
