"""Specification of ``MemoryReturn``: the heap is trimmed soon after large requests, not
after small ones, and a burst of large requests costs a few trims, the last after the last."""

from __future__ import annotations

import time

from meterai_verify.memory_return import LARGE_REQUEST_BYTES, MemoryReturn, malloc_trim


class _Counting:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self) -> bool:
        self.calls.append(time.monotonic())
        return True


def test_a_large_request_is_followed_by_a_trim() -> None:
    trim = _Counting()
    memory = MemoryReturn(min_interval_s=0.05, trim=trim)
    memory.after(LARGE_REQUEST_BYTES)
    time.sleep(0.3)
    assert len(trim.calls) == 1
    assert memory.trims == 1


def test_a_small_request_is_not() -> None:
    trim = _Counting()
    memory = MemoryReturn(min_interval_s=0.05, trim=trim)
    memory.after(LARGE_REQUEST_BYTES - 1)
    time.sleep(0.2)
    assert trim.calls == []


def test_a_burst_is_coalesced_and_the_last_trim_follows_the_last_request() -> None:
    trim = _Counting()
    memory = MemoryReturn(min_interval_s=0.1, trim=trim)
    started = time.monotonic()
    while time.monotonic() - started < 0.5:
        memory.soon()
        time.sleep(0.001)
    last_request = time.monotonic()
    time.sleep(0.4)
    assert 3 <= len(trim.calls) <= 7, trim.calls
    assert trim.calls[-1] >= last_request - 0.1
    gaps = [b - a for a, b in zip(trim.calls, trim.calls[1:], strict=False)]
    assert min(gaps) >= 0.09, gaps


def test_glibc_has_malloc_trim_here() -> None:
    assert malloc_trim()
