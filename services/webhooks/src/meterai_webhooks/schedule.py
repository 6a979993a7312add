"""When a failed delivery is tried again: exponential back-off with full jitter and a cap.

Pure arithmetic, no clock: the delivery loop passes the attempt number and a random source.
Attempt ``n`` (1-based) failed, so the next one waits a random time in
``[d/2, d]`` with ``d = min(cap, base * 2**(n-1))``: doubling spreads a receiver's recovery
load over time, the jitter keeps many deliveries that failed together from returning together,
and the lower half-bound keeps the schedule from collapsing to "at once".
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["retry_delay_s", "schedule_s"]


def retry_delay_s(
    failed_attempts: int,
    base_s: float,
    cap_s: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after ``failed_attempts`` failures (at least 1)."""
    exponent = min(max(failed_attempts, 1) - 1, 62)
    ceiling = min(cap_s, base_s * 2.0**exponent)
    return uniform(ceiling / 2, ceiling)


def schedule_s(max_attempts: int, base_s: float, cap_s: float) -> list[tuple[float, float]]:
    """The ``(shortest, longest)`` wait before each retry: what the README's table shows."""
    return [
        (min(cap_s, base_s * 2.0**n) / 2, min(cap_s, base_s * 2.0**n))
        for n in range(max_attempts - 1)
    ]
