"""Wires the webhook dispatcher (consumer + delivery loop) and the servicer the quota server
carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from sqlalchemy import Engine

from meterai.webhooks.v1 import webhooks_pb2, webhooks_pb2_grpc
from meterai_common.config import Settings
from meterai_common.documents import open_document_store
from meterai_common.messaging import WEBHOOK_EVENTS
from meterai_common.runtime import Transport

from .config import WebhookSettings
from .consumer import EventRecorder
from .dispatcher import DeliveryLoop
from .grpc_api import WebhookServicer

__all__ = ["SERVICE_NAME", "WebhookRuntime", "start_webhooks", "webhook_service"]

SERVICE_NAME = webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name


@dataclass
class WebhookRuntime:
    loop: DeliveryLoop

    def stop(self, grace: float = 10.0, drain_delay: float = 0.0) -> None:
        self.loop.stop(grace)


def start_webhooks(
    settings: Settings, webhooks: WebhookSettings, db: Engine, transport: Transport
) -> WebhookRuntime:
    """Consume ``webhooks.events`` into the delivery log and start posting.

    :param transport: the broker (``meterai worker webhooks``) or the embedded platform's
        in-process bus; either way the dispatcher has its own queue and its own threads.
    """
    recorder: EventRecorder
    loop = DeliveryLoop(db, webhooks, chores=lambda: recorder.close_batches())
    recorder = EventRecorder(db, open_document_store(settings.documents, db), loop.notify)
    transport.subscribe(WEBHOOK_EVENTS, recorder)
    loop.start()
    return WebhookRuntime(loop)


def webhook_service(
    db: Engine,
    authenticate: Callable[[grpc.ServicerContext], Any],
    webhooks: WebhookSettings,
) -> tuple[Callable[[Any, Any], None], Any, str]:
    """``(add_to_server, servicer, full name)`` for the server that carries the service (the
    quota server: resellers reach it with the key they already use)."""
    servicer = WebhookServicer(db, authenticate, webhooks)
    return webhooks_pb2_grpc.add_WebhookServiceServicer_to_server, servicer, SERVICE_NAME
