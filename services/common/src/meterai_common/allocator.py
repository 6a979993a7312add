"""Process-wide allocator tuning for services that handle multi-megabyte documents, and for
the garbage collector of long-running services.

Stamping allocates a few document-sized buffers per request (the output, the signed copy). By
default glibc serves every allocation above its mmap threshold with a fresh ``mmap`` and
unmaps it on free, so each request page-faults the whole document into memory again: several
milliseconds of kernel time for a 9 MB file, more than all the PDF work. Raising the mmap and
trim thresholds lets freed buffers be reused. The cost is memory kept by the process after a
large document, bounded by the trim threshold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

__all__ = ["keep_large_buffers", "settle_garbage_collector"]

YOUNG_GENERATION_THRESHOLD = 50_000
"""Allocations between collections of the youngest generation (CPython's default is 700)."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_large_buffers(
    mmap_threshold: int = 64 * 1024 * 1024, trim_threshold: int = 128 * 1024 * 1024
) -> bool:
    """Apply the thresholds; return False where the C library has no ``mallopt`` (non-glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )


def settle_garbage_collector(young_threshold: int = YOUNG_GENERATION_THRESHOLD) -> None:
    """Call once a service has started: collect, freeze what exists, and collect less often.

    A request allocates thousands of short-lived objects (parsed PDF objects, SQL statements,
    protobuf messages) that reference counting frees; with CPython's defaults they still trigger
    a collection of the youngest generation every 700 allocations, and each older collection
    walks every object the process holds, the libraries' millions included. Freezing moves what
    exists at start-up out of the collector's sight; a higher young threshold collects cycles
    in larger, rarer batches. Measured on a stamping submit: 14 % less CPU. Cyclic garbage is
    still collected, only later, bounded by the threshold.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)
