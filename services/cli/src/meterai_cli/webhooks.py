"""``meterai webhooks``: a reseller's endpoints, the delivery log, dead letters and replay.

These call ``WebhookService`` on the quota port with the reseller's key, so they work the
same against the embedded and the distributed platform.
"""

from __future__ import annotations

from typing import Any

import click
import grpc

from meterai.webhooks.v1 import webhooks_pb2, webhooks_pb2_grpc
from meterai_cli.keys import parse_duration
from meterai_cli.output import emit, fail_rpc, message_dict

__all__ = ["webhooks"]

_STATES = {
    "pending": webhooks_pb2.PENDING,
    "delivered": webhooks_pb2.DELIVERED,
    "dead": webhooks_pb2.DEAD,
}


def _call(obj: Any, method: str, request: Any, what: str) -> Any:
    stub = webhooks_pb2_grpc.WebhookServiceStub(obj.platform.channel("quota"))
    try:
        return getattr(stub, method)(request, metadata=obj.platform.metadata(), timeout=obj.timeout)
    except grpc.RpcError as error:
        fail_rpc(error, what)


def _endpoint_line(endpoint: Any) -> str:
    rotating = (
        f"  (previous secret signs until {endpoint.previous_secret_expires_at.ToJsonString()})"
        if endpoint.HasField("previous_secret_expires_at")
        else ""
    )
    return f"{endpoint.endpoint_id}  {endpoint.url}  {endpoint.description}{rotating}".rstrip()


@click.group()
def webhooks() -> None:
    """Signed HTTPS callbacks for job.done, job.failed and batch.done."""


@webhooks.command("add")
@click.argument("url")
@click.option("--description", default="", help="A note for yourself (at most 200 characters).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def webhooks_add(obj: Any, url: str, description: str, as_json: bool) -> None:
    """Register URL (https://) and print its signing secret, shown only this once."""
    created = _call(
        obj,
        "CreateEndpoint",
        webhooks_pb2.CreateEndpointRequest(url=url, description=description),
        "registering the endpoint failed",
    )
    if as_json:
        emit(message_dict(created), True)
        return
    click.echo(_endpoint_line(created.endpoint))
    click.echo(f"secret {created.secret}")
    click.echo(
        "Keep the secret: it verifies every event's webhook-signature; it is not shown again."
    )


@webhooks.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def webhooks_list(obj: Any, as_json: bool) -> None:
    """The reseller's endpoints."""
    found = _call(obj, "ListEndpoints", webhooks_pb2.ListEndpointsRequest(), "listing failed")
    if as_json:
        emit(message_dict(found), True)
        return
    for endpoint in found.endpoints:
        click.echo(_endpoint_line(endpoint))
    if not found.endpoints:
        click.echo("no endpoints; add one with: meterai webhooks add https://…")


@webhooks.command("remove")
@click.argument("endpoint_id")
@click.pass_obj
def webhooks_remove(obj: Any, endpoint_id: str) -> None:
    """Delete an endpoint and every delivery still waiting for it."""
    gone = _call(
        obj,
        "DeleteEndpoint",
        webhooks_pb2.DeleteEndpointRequest(endpoint_id=endpoint_id),
        "removing the endpoint failed",
    )
    click.echo(f"removed {_endpoint_line(gone)}")


@webhooks.command("rotate")
@click.argument("endpoint_id")
@click.option(
    "--overlap",
    default="24h",
    show_default=True,
    help="How long the previous secret still signs beside the new one (90s, 15m, 24h, 7d).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def webhooks_rotate(obj: Any, endpoint_id: str, overlap: str, as_json: bool) -> None:
    """Give ENDPOINT_ID a new secret; print it, shown only this once."""
    rotated = _call(
        obj,
        "RotateEndpointSecret",
        webhooks_pb2.RotateEndpointSecretRequest(
            endpoint_id=endpoint_id, overlap_seconds=int(parse_duration(overlap).total_seconds())
        ),
        "rotating the secret failed",
    )
    if as_json:
        emit(message_dict(rotated), True)
        return
    click.echo(_endpoint_line(rotated.endpoint))
    click.echo(f"secret {rotated.secret}")


def _list_deliveries(obj: Any, endpoint: str, state: str | None, limit: int, as_json: bool) -> None:
    found = _call(
        obj,
        "ListDeliveries",
        webhooks_pb2.ListDeliveriesRequest(
            endpoint_id=endpoint,
            state=_STATES[state] if state else webhooks_pb2.DELIVERY_STATE_UNSPECIFIED,
            page_size=limit,
        ),
        "listing deliveries failed",
    )
    if as_json:
        emit(message_dict(found), True)
        return
    for item in found.deliveries:
        status = f"HTTP {item.last_status}" if item.last_status else (item.last_error or "-")
        click.echo(
            f"{item.delivery_id}  {webhooks_pb2.DeliveryState.Name(item.state):9}  "
            f"{item.event_type:10}  {item.subject}  attempts {item.attempts}  {status}"
        )


@webhooks.command("deliveries")
@click.option("--endpoint", default="", help="Only this endpoint's deliveries.")
@click.option("--state", type=click.Choice(sorted(_STATES)), default=None)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def webhooks_deliveries(
    obj: Any, endpoint: str, state: str | None, limit: int, as_json: bool
) -> None:
    """The delivery log, newest first."""
    _list_deliveries(obj, endpoint, state, limit, as_json)


@webhooks.command("dead")
@click.option("--endpoint", default="", help="Only this endpoint's dead deliveries.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def webhooks_dead(obj: Any, endpoint: str, limit: int, as_json: bool) -> None:
    """Deliveries given up after their last attempt (replay them with `replay`)."""
    _list_deliveries(obj, endpoint, "dead", limit, as_json)


@webhooks.command("replay")
@click.argument("delivery_ids", nargs=-1)
@click.option("--endpoint", default="", help="Without DELIVERY_IDS: every dead one of it.")
@click.pass_obj
def webhooks_replay(obj: Any, delivery_ids: tuple[str, ...], endpoint: str) -> None:
    """Send deliveries again with fresh attempts (same webhook-id, so receivers deduplicate)."""
    if not delivery_ids and not endpoint:
        raise click.UsageError("name DELIVERY_IDS, or --endpoint to replay its dead deliveries")
    replayed = _call(
        obj,
        "ReplayDeliveries",
        webhooks_pb2.ReplayDeliveriesRequest(delivery_ids=delivery_ids, endpoint_id=endpoint),
        "replay failed",
    )
    click.echo(f"replaying {replayed.replayed} deliveries")
