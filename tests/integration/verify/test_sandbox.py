"""Hostile PDFs are parsed in confined worker processes: each costs only its own request.

The box is judged from outside: every hostile document is refused or judged within its wall
time, the calling process's memory does not grow with what the documents demand, and a
well-formed document checked right after is judged as usual.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from meterai_verify.pdf_check import PdfCheckError
from meterai_verify.sandbox import DocumentRefused, Sandbox, SandboxBusy, SandboxLimits
from tests.integration.verify import hostile_pdfs

LIMITS = SandboxLimits(memory_bytes=768 * 2**20, cpu_seconds=5, wall_seconds=8, concurrency=2)
RSS_GROWTH_BOUND_MB = 64
"""The checking process may grow by this much while hostile documents are checked."""

HOSTILE: dict[str, Callable[[], bytes]] = {
    "decompression bomb (1 GiB in 1 MB)": hostile_pdfs.decompression_bomb,
    "one million objects": hostile_pdfs.million_objects,
    "arrays nested 500,000 deep": hostile_pdfs.deep_nesting,
    "a /Prev loop": hostile_pdfs.prev_loop,
}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.fixture(scope="module")
def hostile() -> dict[str, bytes]:
    return {name: make() for name, make in HOSTILE.items()}


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_document_is_refused_within_its_wall_time(
    name: str, hostile: dict[str, bytes], sandbox: Sandbox
) -> None:
    started = time.monotonic()
    with pytest.raises(PdfCheckError):
        sandbox.check(hostile[name], [])
    assert time.monotonic() - started < LIMITS.wall_seconds + 2


def test_a_document_over_its_cpu_budget_is_killed_and_named(hostile: dict[str, bytes]) -> None:
    # A wall time far above the CPU budget, so the kernel's RLIMIT_CPU is what stops it.
    sandbox = Sandbox(SandboxLimits(cpu_seconds=2, wall_seconds=60))
    with pytest.raises(DocumentRefused, match="CPU"):
        sandbox.check(hostile["one million objects"], [])


def test_hostile_documents_in_parallel_leave_the_caller_s_memory_bounded(
    hostile: dict[str, bytes], stamped: bytes, root_der: bytes
) -> None:
    sandbox = Sandbox(SandboxLimits(memory_bytes=768 * 2**20, cpu_seconds=5, concurrency=4))
    sandbox.check(stamped, [root_der])  # the fork server is running before we measure
    before = rss_mb()
    errors: list[BaseException] = []

    def check(pdf: bytes) -> None:
        try:
            sandbox.check(pdf, [], wait_s=30)
        except PdfCheckError as error:
            errors.append(error)

    threads = [threading.Thread(target=check, args=(pdf,)) for pdf in hostile.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(errors) == len(hostile)
    assert rss_mb() - before < RSS_GROWTH_BOUND_MB
    assert sandbox.check(stamped, [root_der]).signatures[0].intact


def test_a_well_formed_document_after_a_hostile_one_is_judged(
    hostile: dict[str, bytes], sandbox: Sandbox, stamped: bytes, root_der: bytes
) -> None:
    with pytest.raises(PdfCheckError):
        sandbox.check(hostile["decompression bomb (1 GiB in 1 MB)"], [])
    (signature,) = sandbox.check(stamped, [root_der]).signatures
    assert signature.intact and signature.valid and signature.trusted


def test_no_free_worker_means_busy_not_an_unbounded_queue(
    hostile: dict[str, bytes], stamped: bytes
) -> None:
    sandbox = Sandbox(SandboxLimits(cpu_seconds=3, wall_seconds=5, concurrency=1))

    def check_slowly() -> None:
        with pytest.raises(PdfCheckError):
            sandbox.check(hostile["one million objects"], [])

    slow = threading.Thread(target=check_slowly)
    slow.start()
    time.sleep(0.5)
    with pytest.raises(SandboxBusy):
        sandbox.check(stamped, [])
    slow.join(30)
