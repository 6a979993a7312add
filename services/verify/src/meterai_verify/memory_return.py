"""Giving memory back to the system after large uploads, in the process that serves them.

The platform's processes keep freed heap for reuse
(:func:`meterai_common.allocator.keep_large_buffers`): stamping gains several milliseconds
per document from it. A verification front end is the opposite case: anyone may send it
uploads of up to the document limit, and under a flood gRPC receives each one (also the
calls the admission interceptor refuses, whose bytes arrive before the refusal does) into
buffers that glibc then keeps, spread over its per-thread arenas. Measured with
``bench/verify.py``: the embedded platform grew from 158 MB to 562 MB during the flood and
stayed there.

:func:`return_large_buffers` is the allocator setting for processes that serve verification:
large buffers are mapped on their own and given back when freed.

:class:`MemoryReturn` calls glibc's ``malloc_trim(0)``, which hands free pages of every arena
back to the kernel, shortly after large requests end. Trims are coalesced: at most one per
:attr:`MemoryReturn.min_interval_s`, the last one always after the last large request, so a
flood costs a few trims per second and memory falls back once it stops. Where the C library
has no ``malloc_trim`` (not glibc) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from collections.abc import Callable

from meterai_common.allocator import keep_large_buffers

__all__ = ["LARGE_REQUEST_BYTES", "MemoryReturn", "malloc_trim", "return_large_buffers"]

LARGE_REQUEST_BYTES = 1024 * 1024
"""Requests at least this large are followed by a trim; small ones reuse the heap."""


def _load_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _load_trim()


def return_large_buffers() -> bool:
    """Allocator settings for a process that serves public uploads: large buffers are given back.

    Buffers of :data:`LARGE_REQUEST_BYTES` or more are mapped on their own and unmapped when
    freed, and the heap is trimmed above four times that. glibc's defaults do not do this: its
    mmap threshold rises to the largest buffer freed so far (32 MB at most), after which
    uploads land in per-thread arenas whose top is trimmed only past twice that threshold, and
    ``malloc_trim`` never trims the top of a thread's arena. Measured with
    ``tests/integration/verify/test_memory_return.py``: a flood left 114 MB behind with the
    defaults and with :func:`malloc_trim`, 1 MB with these settings. The cost is a page fault
    per 4 KiB of each large buffer, a few milliseconds per 10 MB upload.
    """
    return keep_large_buffers(LARGE_REQUEST_BYTES, 4 * LARGE_REQUEST_BYTES)


def malloc_trim() -> bool:
    """Return free heap pages to the kernel now; False where glibc's ``malloc_trim`` is absent."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class MemoryReturn:
    """Trims the heap soon after large requests, at most once per ``min_interval_s``."""

    def __init__(
        self, min_interval_s: float = 0.25, trim: Callable[[], bool] = malloc_trim
    ) -> None:
        self.min_interval_s = min_interval_s
        self._trim = trim
        self._lock = threading.Lock()
        self._pending = False
        self._last = 0.0
        self.trims = 0
        """Trims done so far (for tests and the benchmark)."""

    def after(self, size: int) -> None:
        """A request of ``size`` bytes has ended (answered or refused): trim soon if large."""
        if size >= LARGE_REQUEST_BYTES:
            self.soon()

    def soon(self) -> None:
        """Schedule a trim; one already pending covers this request too."""
        with self._lock:
            if self._pending:
                return
            self._pending = True
            # A short delay lets gRPC free the call's buffers, which happens after the handler
            # returns; spacing keeps a flood from trimming on every call.
            delay = max(0.02, self._last + self.min_interval_s - time.monotonic())
        timer = threading.Timer(delay, self._run)
        timer.daemon = True
        timer.start()

    def _run(self) -> None:
        with self._lock:
            self._pending = False
            self._last = time.monotonic()
        if self._trim():
            self.trims += 1
