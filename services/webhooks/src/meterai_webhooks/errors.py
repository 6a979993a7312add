"""What the webhook API refuses; each error names its gRPC status code and reason."""

from __future__ import annotations

__all__ = ["EndpointNotFound", "InvalidEndpoint", "TooManyEndpoints", "WebhookError"]


class WebhookError(Exception):
    code = "FAILED_PRECONDITION"


class InvalidEndpoint(WebhookError):
    """The URL is not one the platform will post to."""

    code = "INVALID_ARGUMENT"
    reason = "INVALID_WEBHOOK_URL"

    def __init__(self, message: str, *, field: str = "url") -> None:
        super().__init__(message)
        self.field = field


class EndpointNotFound(WebhookError):
    """No such endpoint for this reseller (another reseller's is not found either)."""

    code = "NOT_FOUND"
    reason = "WEBHOOK_ENDPOINT_NOT_FOUND"


class TooManyEndpoints(WebhookError):
    code = "RESOURCE_EXHAUSTED"
    reason = "TOO_MANY_WEBHOOK_ENDPOINTS"
