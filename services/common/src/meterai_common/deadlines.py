"""The rule that a call whose caller has given up commits nothing.

A client that sees DEADLINE_EXCEEDED or cancels does not know whether its request took effect;
if the server went on and charged it, a client retrying with a fresh idempotency key would pay
twice. So every servicer that charges checks, inside its transaction and just before the
commit, that the call is still wanted: :func:`ensure_call_alive` raises an error carrying the
gRPC status, the transaction rolls back, and nothing is written.

What remains is the moment between this check and the commit returning: a deadline that passes
in those milliseconds leaves a committed request whose answer the client never saw. That is what
idempotency keys are for: retrying with the same key answers with the committed result.
"""

from __future__ import annotations

import grpc

__all__ = ["COMMIT_MARGIN_S", "CallCancelled", "CallExpired", "ensure_call_alive"]

COMMIT_MARGIN_S = 0.02
"""A call with less time than this left is refused rather than committed: about what a commit
takes on a busy database, so a commit started in time usually also ends in time."""


class CallExpired(Exception):
    """The caller's deadline passed before the commit."""

    code = "DEADLINE_EXCEEDED"


class CallCancelled(Exception):
    """The caller cancelled (or went away) before the commit."""

    code = "CANCELLED"


def ensure_call_alive(context: grpc.ServicerContext, margin_s: float = COMMIT_MARGIN_S) -> None:
    """Raise :class:`CallExpired` or :class:`CallCancelled` unless the call still has a caller
    waiting with at least ``margin_s`` seconds left; call it right before the commit."""
    remaining = context.time_remaining()
    if remaining is not None and remaining < margin_s:
        raise CallExpired(
            f"the call's deadline passed before anything was committed ({remaining * 1000:.0f} ms "
            "left): nothing was charged; retry with a longer deadline and the same idempotency key"
        )
    if not context.is_active():
        raise CallCancelled("the call was cancelled before anything was committed: nothing charged")
