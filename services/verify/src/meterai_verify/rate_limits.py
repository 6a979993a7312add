"""Per-client token buckets, shared by the public web site and the gRPC serial lookup.

Each client (by address) may make ``rate`` requests a second with bursts of ``burst``; the
number of clients remembered is bounded, the least recently seen forgotten first, so a scan
from many addresses cannot grow the process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["TokenBuckets", "client_address"]


def client_address(peer: str) -> str:
    """The address part of a gRPC peer string (``ipv4:1.2.3.4:5678``, ``ipv6:[::1]:5678``)."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return peer
    return rest.rsplit(":", 1)[0]


class TokenBuckets:
    """One token bucket per key, at most ``max_keys`` keys (least recently used dropped)."""

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``: 0 if granted, else seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self._rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait
