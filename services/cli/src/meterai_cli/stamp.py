"""``meterai stamp``: submit each file, follow its job to the end, download the result.

Each file gets its own idempotency key derived from its content and the request, so running
the same command again after a network failure does not stamp (or charge) a document twice.
"""

from __future__ import annotations

import glob
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from tqdm import tqdm

from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai_cli.client import MAX_MESSAGE_BYTES, Platform

__all__ = ["InputFile", "StampRequest", "StampResult", "expand_inputs", "stamp_files"]

_TERMINAL = {
    stamping_pb2.JOB_STATE_DONE,
    stamping_pb2.JOB_STATE_FAILED,
    stamping_pb2.JOB_STATE_DEAD_LETTERED,
}


@dataclass(frozen=True)
class StampRequest:
    page: int
    rect: tuple[float, float, float, float]
    document_type: str
    document_number: str
    document_date: str
    document_value: int
    password: str | None
    wait_s: float = 600.0
    """How long to follow each job before giving up waiting (the job itself goes on)."""


@dataclass(frozen=True)
class InputFile:
    """A document to stamp and where its result goes, relative to the output folder."""

    path: Path
    relative: Path


_MAGIC = set("*?[")


def expand_inputs(arguments: list[str]) -> list[InputFile]:
    """Files, directories (every ``*.pdf`` below, recursively) and glob patterns (``**``
    included), in the order given, each document once.

    A document found under a directory or a pattern keeps its path below that directory (or
    below the pattern's fixed part), so ``a/x.pdf`` and ``b/x.pdf`` do not overwrite each
    other in the output folder.

    :raises FileNotFoundError: an argument that names nothing, or a pattern or directory
        that matches no PDF.
    """
    found: list[InputFile] = []
    seen: set[Path] = set()

    def add(path: Path, relative: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            found.append(InputFile(path, relative))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            matches = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".pdf"
            )
            if not matches:
                raise FileNotFoundError(f"no PDF files under {argument}")
            for match in matches:
                add(match, match.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        elif _MAGIC & set(argument):
            base = _fixed_part(argument)
            matches = sorted(
                Path(p) for p in glob.glob(argument, recursive=True) if Path(p).is_file()
            )
            if not matches:
                raise FileNotFoundError(f"no files match {argument}")
            for match in matches:
                add(match, match.relative_to(base) if match.is_relative_to(base) else match)
        else:
            raise FileNotFoundError(f"no such file or directory: {argument}")
    return found


def _fixed_part(pattern: str) -> Path:
    """The leading folders of a glob pattern that contain no wildcard."""
    parts: list[str] = []
    for part in Path(pattern).parts[:-1]:
        if _MAGIC & set(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path()


@dataclass
class StampResult:
    source: Path
    ok: bool
    serial: str = ""
    output: Path | None = None
    job_id: str = ""
    error: str = ""
    unreachable: bool = False
    replayed: bool = False
    """The platform had stamped this document with this request before: the earlier stamp
    was returned and nothing was charged again."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.source),
            "ok": self.ok,
            "serial": self.serial,
            "output": str(self.output) if self.output else None,
            "job_id": self.job_id,
            "error": self.error or None,
            "already_stamped": self.replayed,
        }


def _key(data: bytes, request: StampRequest) -> str:
    h = hashlib.sha256(data)
    h.update(
        repr(
            (
                request.page,
                request.rect,
                request.document_type,
                request.document_number,
                request.document_date,
                request.document_value,
            )
        ).encode()
    )
    return "cli-" + h.hexdigest()[:40]


PARALLEL_FILES = 8
"""Files in flight at once: enough to keep several signing workers busy from one terminal,
few enough that the platform's per-reseller limits are not the first thing a user meets."""


def _wait_until_terminal(
    stub: Any, job: Any, metadata: Any, call_timeout_s: float, wait_s: float
) -> Any:
    """Follow the job until it ends or ``wait_s`` passes.

    A watch is one call with its own deadline; during a surge a queued job can outlast it, so
    an expired or dropped watch is simply opened again (the server ends watches when it shuts
    down, too). Running out of patience leaves the job running: stamping the same file again
    returns it (same idempotency key), nothing is charged twice.
    """
    deadline = time.monotonic() + wait_s
    while job.state not in _TERMINAL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            for update in stub.WatchJob(
                stamping_pb2.WatchJobRequest(job_id=job.job_id),
                metadata=metadata,
                timeout=min(call_timeout_s, remaining),
            ):
                job = update
                if job.state in _TERMINAL:
                    break
        except grpc.RpcError as error:
            if error.code() not in (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.CANCELLED,
            ):
                raise
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    return job


def stamp_files(
    platform: Platform,
    files: list[InputFile],
    out_dir: Path,
    request: StampRequest,
    *,
    progress: bool,
) -> list[StampResult]:
    """Stamp every file, several at a time; results come back in the order of ``files``."""
    stub = stamping_pb2_grpc.StampingServiceStub(platform.channel("stamping"))
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[StampResult | None] = [None] * len(files)
    with (
        tqdm(total=len(files), unit="doc", disable=not progress, desc="stamping") as bar,
        ThreadPoolExecutor(max_workers=min(PARALLEL_FILES, len(files))) as pool,
    ):
        futures = {
            pool.submit(_stamp_one, stub, platform, item, out_dir, request): index
            for index, item in enumerate(files)
        }
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update(1)
    return [result for result in results if result is not None]


MAX_DOCUMENT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
"""The largest file one submission can carry (the call's size limit less room for the other
fields); past it gRPC would refuse with only "message larger than max"."""


def _too_large(size: int, name: str) -> str | None:
    if size <= MAX_DOCUMENT_BYTES:
        return None
    return (
        f"RESOURCE_EXHAUSTED: {name} is {size / 2**20:.1f} MiB; a submission carries at most "
        f"{MAX_DOCUMENT_BYTES / 2**20:.1f} MiB (the platform's own limit is 20 MiB unless its "
        "operator set another). Compress or split it and try again; nothing was sent and "
        "nothing was charged."
    )


def _stamp_one(
    stub: Any, platform: Platform, item: InputFile, out_dir: Path, request: StampRequest
) -> StampResult:
    path = item.path
    refused = _too_large(path.stat().st_size, path.name)
    if refused is not None:  # told before the file is read or anything is sent
        return StampResult(path, False, error=refused)
    data = path.read_bytes()
    x0, y0, x1, y1 = request.rect
    metadata = platform.metadata()
    try:
        job = stub.SubmitDocument(
            stamping_pb2.SubmitDocumentRequest(
                pdf=data,
                placement=stamping_pb2.Placement(
                    page=request.page, rect=stamping_pb2.Rect(x0=x0, y0=y0, x1=x1, y1=y1)
                ),
                metadata=stamping_pb2.DocumentMetadata(
                    document_type=request.document_type,
                    document_number=request.document_number,
                    document_date=request.document_date,
                    document_value_idr=request.document_value,
                ),
                idempotency_key=_key(data, request),
                filename=path.name,
                password=request.password or "",
            ),
            metadata=metadata,
            timeout=platform.timeout_s,
        )
        replayed = job.replayed
        job = _wait_until_terminal(stub, job, metadata, platform.timeout_s, request.wait_s)
        if job.state != stamping_pb2.JOB_STATE_DONE:
            if job.state not in _TERMINAL:
                state = stamping_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")
                reason = (
                    f"still {state} after the wait; run the same command again to pick up "
                    "the result (nothing is charged twice)"
                )
            else:
                refund = " (quota refunded)" if job.refunded else ""
                reason = f"{job.failure_code}: {job.failure_reason}{refund}"
            return StampResult(path, False, job.serial, None, job.job_id, reason, replayed=replayed)
        output = out_dir / item.relative
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.part")
        with tmp.open("wb") as handle:
            for chunk in stub.GetStampedDocument(
                stamping_pb2.GetStampedDocumentRequest(job_id=job.job_id),
                metadata=metadata,
                timeout=platform.timeout_s,
            ):
                handle.write(chunk.data)
        tmp.replace(output)
        return StampResult(path, True, job.serial, output, job.job_id, replayed=replayed)
    except grpc.RpcError as error:
        code = error.code()
        return StampResult(
            path,
            False,
            error=f"{code.name}: {error.details()}",
            unreachable=code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED),
        )
