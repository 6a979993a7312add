"""Printing results for people and, with ``--json``, for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

__all__ = ["EXIT_REFUSED", "EXIT_UNREACHABLE", "emit", "fail_rpc", "message_dict"]

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3

_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}


def _numbers(data: dict[str, Any], descriptor: Any) -> dict[str, Any]:
    """Proto3 JSON writes 64-bit integers as strings; scripts want numbers (quota counts and
    rupiah amounts stay far below 2**53)."""
    for name, value in data.items():
        field = descriptor.fields_by_name.get(name)
        if field is None:
            continue
        if field.type in _INT64:
            data[name] = [int(v) for v in value] if isinstance(value, list) else int(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    _numbers(item, field.message_type)
    return data


def message_dict(message: Message, *, defaults: bool = False) -> dict[str, Any]:
    data = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=defaults
    )
    return _numbers(data, message.DESCRIPTOR)


def emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


_HANDSHAKE_SIGNS = ("handshake", "ssl", "certificate", "tls", "socket closed")


def fail_rpc(error: grpc.RpcError, what: str) -> NoReturn:
    """Report a failed call on stderr and exit: 3 if the platform did not answer, else 1."""
    code = error.code()
    details = error.details() or code.name
    if code is grpc.StatusCode.UNAVAILABLE and any(
        sign in details.lower() for sign in _HANDSHAKE_SIGNS
    ):
        click.echo(f"error: {what}: the TLS handshake failed ({details}).", err=True)
        found_by = _found_by()
        if found_by:
            click.echo(f"The address came from {found_by}.", err=True)
        click.echo(
            "Check that --ca (default $METERAI_HOME/tls/ca.crt) is the CA of this platform, "
            "that a client certificate (--client-cert) is the platform's and not expired, and "
            "that the server does not run plaintext (then use --insecure).",
            err=True,
        )
        sys.exit(EXIT_UNREACHABLE)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        click.echo(f"error: {what}: the platform did not answer ({details}).", err=True)
        found_by = _found_by()
        if found_by:
            click.echo(f"The address came from {found_by}.", err=True)
        click.echo("Is it running? Start it with 'make run' (or 'meterai up').", err=True)
        sys.exit(EXIT_UNREACHABLE)
    click.echo(f"error: {what}: {code.name}: {details}", err=True)
    if code is grpc.StatusCode.UNAUTHENTICATED and "missing API key" in details:
        context = click.get_current_context(silent=True)
        click.echo(_key_hint(getattr(context and context.find_root().obj, "home", None)), err=True)
    sys.exit(EXIT_REFUSED)


def _found_by() -> str | None:
    """Where the CLI took the platform's address from, if it got that far."""
    context = click.get_current_context(silent=True)
    obj = context.find_root().obj if context is not None else None
    platform = getattr(obj, "_platform", None)
    found_by = getattr(platform, "found_by", None)
    return found_by if isinstance(found_by, str) else None


def _key_hint(home: object) -> str:
    """Where the CLI looked for a key, and how to point it at one."""
    looked = f"{home}/credentials.json" if home is not None else "$METERAI_HOME/credentials.json"
    return (
        f"No API key was found (looked in --api-key, METERAI_API_KEY and {looked}). Pass "
        "--api-key or set METERAI_API_KEY, or --home with the folder of the platform's state "
        "(the demo key of 'meterai up' / 'make run' is in its .meterai/credentials.json; "
        "'meterai up' also records that folder in ~/.config/meterai/config.json)."
    )
