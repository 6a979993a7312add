"""Log lines as JSON, one object a line, with the job, serial and reseller they concern.

Operators search a day's logs by job id, serial or reseller ("what happened to this
applicant's letter?"); English messages with ids spliced in need a regular expression per
message. Each line here is a JSON object with fixed keys (``time``, ``level``, ``logger``,
``process``, ``message``) plus the context fields that are known: those bound for the block
of work being done (:func:`log_context`, e.g. around one job's finishing) and those a call
passes with ``extra={"job_id": ...}``. A line logged inside a traced span carries its
``trace_id`` (:mod:`meterai_common.tracing`), so a log search and a trace view meet.

What never appears: secrets and document bytes. Messages are written by us and name ids, not
contents; as a last line of defence every message and traceback goes through :func:`redact`,
which masks anything shaped like an API key, a webhook secret or a bearer token.

``METERAI_LOG_FORMAT`` chooses ``json`` (the default for services and workers) or ``text``
(lines for a person at a terminal).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType

from opentelemetry import trace

__all__ = ["CONTEXT_FIELDS", "JsonLines", "configure", "log_context", "redact"]

CONTEXT_FIELDS = ("job_id", "batch_id", "serial", "reseller", "trace_id")
"""Keys a line may carry besides the fixed ones, in this order."""

_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar(
    "meterai_log_context", default=MappingProxyType({})
)

_SECRETS = re.compile(
    r"(?P<keep>mtk_|whsec_|Bearer\s+)[A-Za-z0-9_\-+/=]{4,}"
    r"|(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----).*?-----END [A-Z ]*PRIVATE KEY-----",
    re.DOTALL,
)


def redact(text: str) -> str:
    """``text`` with API keys, webhook secrets, bearer tokens and private keys masked; the
    kind stays visible (``mtk_…``) so the line still says what was there."""

    def mask(match: re.Match[str]) -> str:
        if match.group("pem"):
            return match.group("pem") + "…(redacted)"
        return match.group("keep") + "…"

    return _SECRETS.sub(mask, text)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind ``fields`` (see :data:`CONTEXT_FIELDS`; ``None`` values are left out) to every
    line logged in this block, on this thread or task, on top of any outer context."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields {sorted(unknown)}: use {CONTEXT_FIELDS}")
    bound = {**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _CONTEXT.set(MappingProxyType(bound))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonLines(logging.Formatter):
    """One JSON object per record; see the module docstring for its keys."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self._process,
            "message": redact(record.getMessage()),
        }
        context = _CONTEXT.get()
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None) or context.get(key)
            if value is not None:
                line[key] = str(value)
        if "trace_id" not in line:
            span = trace.get_current_span().get_span_context()
            if span.is_valid:
                line["trace_id"] = format(span.trace_id, "032x")
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class _RedactedText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(process: str, *, verbose: bool = False, fmt: str | None = None) -> None:
    """Send the root logger's records to stderr as JSON lines (or text), at INFO when
    ``verbose`` else WARNING; replaces handlers a previous call installed.

    :param process: what this process is (``stamping``, ``worker-signing``), on every line.
    :param fmt: ``json`` or ``text``; default ``METERAI_LOG_FORMAT``, else ``json``.
    """
    chosen = (fmt or os.environ.get("METERAI_LOG_FORMAT") or "json").lower()
    if chosen not in ("json", "text"):
        raise ValueError(f"METERAI_LOG_FORMAT={chosen!r}: use 'json' or 'text'")
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonLines(process)
        if chosen == "json"
        else _RedactedText("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
