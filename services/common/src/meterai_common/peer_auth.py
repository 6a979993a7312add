"""Who may call an internal port: platform services named by their certificate, no one else.

The signing port asks every caller for a certificate from the platform CA (the handshake
refuses those without one); this interceptor then lets in only the platform identities on its
allow-list. A reseller's certificate is issued by the same CA, so the handshake alone would let
it through: the identity in the certificate, not the CA, is what grants access.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

import grpc

from meterai_common.tls import RESELLER_URI_PREFIX, SERVICE_URI_PREFIX, peer_identity

__all__ = ["RequirePlatformPeer"]

log = logging.getLogger(__name__)


def _refusal(code: grpc.StatusCode, message: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    return refuse


class RequirePlatformPeer(grpc.ServerInterceptor):
    """Refuse every call whose verified client certificate is not one of ``allowed``.

    :param allowed: platform identities (``stamping``, ``finishing``, ``admin``...).
    :param insecure: the server runs without TLS (development only): nobody can be
        identified, so the check is off, as the start-up warning says.
    """

    def __init__(self, service: str, allowed: Collection[str], *, insecure: bool = False) -> None:
        self._service = service
        self._allowed = frozenset(SERVICE_URI_PREFIX + name for name in allowed)
        self._names = ", ".join(sorted(allowed))
        self._insecure = insecure

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or self._insecure:
            return handler
        return _guarded(handler, self._check)

    def _check(self, context: grpc.ServicerContext) -> tuple[grpc.StatusCode, str] | None:
        identity = peer_identity(context)
        if identity in self._allowed:
            return None
        if identity is None:
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                f"the {self._service} port serves platform services only: present the client "
                f"certificate of one of: {self._names} (issued by 'meterai admin init-pki')",
            )
        log.warning("%s: refused a call from %s", self._service, identity)
        who = (
            "a reseller certificate"
            if identity.startswith(RESELLER_URI_PREFIX)
            else f"the certificate of {identity.removeprefix(SERVICE_URI_PREFIX)}"
        )
        return (
            grpc.StatusCode.PERMISSION_DENIED,
            f"the {self._service} port serves {self._names} only; {who} may not call it",
        )


def _guarded(
    handler: grpc.RpcMethodHandler,
    check: Callable[[grpc.ServicerContext], tuple[grpc.StatusCode, str] | None],
) -> grpc.RpcMethodHandler:
    def wrap(behaviour: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            refused = check(context)
            if refused is not None:
                context.abort(*refused)
            return behaviour(request, context)

        return guarded

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        wrap(handler.stream_stream),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
