"""Untrusted PDFs are parsed in a box: one short-lived worker process per document.

A hostile upload (a decompression bomb, a million objects, nesting a thousand deep, a
``/Prev`` loop) must cost only its own request. So the serving process never parses an
uploaded PDF itself: each document is checked by :func:`~meterai_verify.pdf_check.check_pdf`
in a fresh process forked from a *fork server* that has pyHanko already imported (about
10 ms to start, and no state or memory carried from one document to the next), under

* ``RLIMIT_AS``: the address space it may map (a bomb hits ``MemoryError``, not the host);
* ``RLIMIT_CPU``: the CPU seconds it may burn (the kernel stops it with ``SIGXCPU``);
* a wall-time bound enforced by the parent, which kills the worker when it is exceeded;
* ``RLIMIT_FSIZE`` 0 and ``RLIMIT_CORE`` 0: it writes no files, leaves no core dumps;
* ``nice`` 10: on a small host the verification workers yield the CPU to the platform's own
  work (a reseller's submit is not slowed by someone's million-object upload).

At most :attr:`SandboxLimits.concurrency` workers run at once; a caller that finds no free
slot within ``wait_s`` is told the service is busy (:class:`SandboxBusy`) rather than queued
without bound, so the serving process's memory stays bounded by ``concurrency`` uploads in
flight plus its own.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing import context, forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection
from typing import Any

from meterai_verify.pdf_check import PasswordRequired, PdfCheck, PdfCheckError, check_pdf

__all__ = ["DocumentRefused", "Sandbox", "SandboxBusy", "SandboxLimits"]

_PRELOAD = ["meterai_verify.pdf_check"]


@dataclass(frozen=True)
class SandboxLimits:
    """Bounds on checking one document."""

    memory_bytes: int = 1024 * 1024 * 1024
    """Address space of the worker (``RLIMIT_AS``), libraries included."""
    cpu_seconds: int = 10
    """CPU time of the worker (``RLIMIT_CPU``)."""
    wall_seconds: float = 15.0
    """Time from start to answer; the worker is killed past it."""
    concurrency: int = 2
    """Workers at once (one per core of a small host)."""


class SandboxBusy(Exception):
    """Every worker slot is taken: try again shortly (429 / RESOURCE_EXHAUSTED)."""


class DocumentRefused(PdfCheckError):
    """The document exceeded its limits (memory, CPU, wall time) or crashed its worker."""


class _LeanPopen(popen_forkserver.Popen):  # type: ignore[misc,name-defined]
    """The fork server's launch, minus re-running the parent's ``__main__`` in the child.

    ``multiprocessing`` has every child import the parent's main script again (for pickled
    functions defined there). The worker's function lives in this module, so that import would
    only cost each document the command line's start-up time (or run a script twice).
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(
            self,
            util.close_fds,  # type: ignore[attr-defined]
            (_parent_w, self.sentinel),
        )
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Worker(context.ForkServerProcess):  # type: ignore[misc,name-defined]
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _LeanPopen(process_obj)


def _confine(limits: SandboxLimits) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(10)


def _work(
    channel: Connection, roots: list[bytes], limits: SandboxLimits, password: str | None
) -> None:
    """The worker: confine itself, read the document, check, send back the result or why not.

    The document comes over the pipe rather than in the pickled arguments, so the parent holds
    no extra copy of it while the worker starts.
    """
    _confine(limits)
    try:
        pdf = channel.recv_bytes()
        result: tuple[str, Any] = ("ok", check_pdf(pdf, roots, password))
    except PasswordRequired as error:
        result = ("password", str(error))
    except PdfCheckError as error:
        result = ("invalid", str(error))
    except MemoryError:
        result = ("limit", "the document needs more memory than verification allows")
    except RecursionError:
        result = ("limit", "the document is nested deeper than verification allows")
    except Exception as error:  # untrusted input: any parser failure is the document's
        result = ("invalid", f"unreadable PDF: {error}")
    try:
        channel.send(result)
        channel.close()
    except Exception:  # a result too large to send is the document's fault as well
        os._exit(3)
    # The answer is sent: skip the interpreter's teardown, the parent is waiting to reap.
    os._exit(0)


class Sandbox:
    """Checks PDFs in confined worker processes, at most ``limits.concurrency`` at once."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._slots = threading.BoundedSemaphore(self.limits.concurrency)

    def warm(self) -> None:
        """Start the fork server now, in the background: importing pyHanko there takes
        seconds, which the first uploads would otherwise wait for (and time out on)."""
        threading.Thread(target=forkserver.ensure_running, name="sandbox-warm", daemon=True).start()

    def check(
        self,
        pdf: bytes,
        trust_roots: list[bytes],
        *,
        wait_s: float = 0.0,
        password: str | None = None,
    ) -> PdfCheck:
        """:func:`~meterai_verify.pdf_check.check_pdf` in a confined worker.

        :param wait_s: how long to wait for a free worker slot before :class:`SandboxBusy`.
        :param password: the document's password, for an encrypted file the empty one
            does not open (sent to the worker with the arguments, never logged).
        :raises PasswordRequired: the document is encrypted and no password tried opens it.
        :raises DocumentRefused: the document exceeded a limit or killed its worker.
        :raises PdfCheckError: the document is not a readable PDF.
        """
        acquired = self._slots.acquire(timeout=wait_s) if wait_s > 0 else self._slots.acquire(False)
        if not acquired:
            raise SandboxBusy("every verification worker is busy")
        try:
            return self._run(pdf, trust_roots, password)
        finally:
            self._slots.release()

    def _run(self, pdf: bytes, trust_roots: list[bytes], password: str | None) -> PdfCheck:
        receive, child_end = self._context.Pipe(duplex=True)
        worker = _Worker(
            target=_work, args=(child_end, list(trust_roots), self.limits, password), daemon=True
        )
        started = time.monotonic()
        worker.start()
        child_end.close()
        try:
            # A worker that died before reading is judged by its exit code, below.
            with contextlib.suppress(BrokenPipeError, OSError):
                receive.send_bytes(pdf)
            if not receive.poll(self.limits.wall_seconds):
                raise DocumentRefused(
                    f"verification took longer than {self.limits.wall_seconds:g} s: refused"
                )
            try:
                kind, value = receive.recv()
            except (EOFError, OSError):
                worker.join(1.0)
                raise DocumentRefused(self._death(worker.exitcode)) from None
        finally:
            receive.close()
            if worker.is_alive():
                worker.kill()
            worker.join(max(1.0, self.limits.wall_seconds - (time.monotonic() - started)))
        if kind == "ok":
            result: PdfCheck = value
            return result
        if kind == "limit":
            raise DocumentRefused(str(value))
        if kind == "password":
            raise PasswordRequired(str(value))
        raise PdfCheckError(str(value))

    def _death(self, code: int | None) -> str:
        if code == -signal.SIGXCPU or code == -signal.SIGKILL:
            return f"the document needs more than {self.limits.cpu_seconds} s of CPU: refused"
        return f"the document crashed its verification worker (exit {code}): refused"
