"""The verification site and JSON API as one ASGI application (FastAPI on Starlette).

Pages are rendered on the server (Jinja2, no JavaScript): the serial page at
``<serial_prefix>/<serial>`` (the QR's target), the upload result, and a home page; the JSON
API lives under ``/api/v1`` and is described at ``/openapi.json``. Verdicts come from
:mod:`meterai_verify.verdicts`, as for gRPC; uploads are parsed in the sandbox's worker
processes; :class:`~meterai_verify.web.guard.Guard` wraps the whole application.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from meterai_common.db import reading
from meterai_verify.memory_return import MemoryReturn
from meterai_verify.pdf_check import PasswordRequired, PdfCheckError
from meterai_verify.sandbox import Sandbox, SandboxBusy
from meterai_verify.serial_facts import SerialFacts, serial_facts
from meterai_verify.verdicts import DocumentVerdict, judge_document, judge_serial
from meterai_verify.web.guard import Guard, GuardLimits
from meterai_verify.web.models import DocumentOut, ErrorOut, RevisionOut, SealOut, SerialOut
from meterai_verify.web.texts import texts

__all__ = ["RevisionStore", "WebConfig", "create_app"]

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
)
_PDF_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "not a readable PDF"},
    411: {"model": ErrorOut, "description": "no Content-Length"},
    403: {
        "model": ErrorOut,
        "description": "encrypted: supply the document's password (X-Document-Password)",
    },
    413: {"model": ErrorOut, "description": "upload too large"},
    422: {"model": ErrorOut, "description": "refused: exceeded verification limits"},
    429: {"model": ErrorOut, "description": "too many requests (see Retry-After)"},
}


@dataclass(frozen=True)
class WebConfig:
    serial_prefix: str = "/v"
    """Path of the QR's base URL: a seal's page is ``<serial_prefix>/<serial>``."""
    guard: GuardLimits = field(default_factory=GuardLimits)
    revision_cache_bytes: int = 64 * 1024 * 1024
    """Stamped revisions kept for download after an upload (least recent dropped)."""
    slot_wait_s: float = 2.0
    """How long an upload waits for a verification worker before 429."""


class RevisionStore:
    """Stamped revisions by SHA-256, at most ``capacity`` bytes in all (memory bound)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if len(data) > self._capacity:
            return digest
        with self._lock:
            if digest in self._items:
                self._items.move_to_end(digest)
                return digest
            self._items[digest] = data
            self._size += len(data)
            while self._size > self._capacity:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
        return digest

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            return self._items.get(digest)


def _lang(request: Request, form_lang: object = None) -> str:
    lang = form_lang if isinstance(form_lang, str) else request.query_params.get("lang")
    return "en" if lang == "en" else "id"


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _iso(moment: datetime | None) -> str:
    """ISO 8601 in UTC (``Z``) for ``data-*`` attributes; empty for none."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rupiah(value: int | None) -> str:
    return "" if value is None else "Rp " + f"{value:,}".replace(",", ".")


def _serial_out(facts: SerialFacts) -> SerialOut:
    return SerialOut(
        serial=facts.serial,
        verdict=judge_serial(facts).value,  # type: ignore[arg-type]
        status=facts.status,  # type: ignore[arg-type]
        stamped_at=facts.stamped_at,
        trusted_time=facts.trusted_time,
        value_idr=facts.value_idr,
        document_type=facts.document_type,
        document_number=facts.document_number,
        document_date=facts.document_date,
        reseller_name=facts.reseller_name,
    )


def create_app(
    db: Engine,
    trust_roots: Callable[[], list[bytes]],
    sandbox: Sandbox,
    config: WebConfig | None = None,
) -> Guard:
    """The whole site, guarded. ``trust_roots`` returns the DER roots seals must chain to."""
    config = config or WebConfig()
    prefix = "/" + config.serial_prefix.strip("/") if config.serial_prefix.strip("/") else ""
    revisions = RevisionStore(config.revision_cache_bytes)
    memory = MemoryReturn()
    cap = config.guard.max_upload_bytes
    app = FastAPI(
        title="meterai verification",
        version="1",
        description="Check an e-meterai serial or a stamped PDF. No key needed.",
        docs_url=None,
        redoc_url=None,
    )

    def facts(serial: str) -> SerialFacts:
        with reading(db) as conn:
            return serial_facts(conn, serial)

    def page(request: Request, template: str, lang: str, **values: Any) -> HTMLResponse:
        other = "id" if lang == "en" else "en"
        query = dict(request.query_params)
        query["lang"] = other
        # A result page cannot be fetched again without its upload: switch on the home page.
        path = request.url.path if request.method == "GET" else (prefix or "/")
        html = _TEMPLATES.get_template(template).render(
            lang=lang,
            other_lang=other,
            t=texts(lang),
            switch_url=f"{path}?{urlencode(query)}",
            verify_action=f"{prefix}/verify" if prefix else "/verify",
            serial_action=prefix or "/",
            when=_when,
            iso=_iso,
            rupiah=_rupiah,
            **values,
        )
        return HTMLResponse(html)

    def verify(pdf: bytes, password: str | None) -> DocumentVerdict:
        checked = sandbox.check(
            pdf, trust_roots(), wait_s=config.slot_wait_s, password=password or None
        )
        return judge_document(checked, facts)

    def revision_urls(pdf: bytes, verdict: DocumentVerdict) -> list[RevisionOut | None]:
        out: list[RevisionOut | None] = []
        for seal in verdict.seals:
            end = seal.signed_revision_end
            if not 0 < end <= len(pdf):
                out.append(None)
                continue
            digest = revisions.put(pdf[:end])
            stored = revisions.get(digest) is not None
            url = f"/api/v1/revisions/{digest}.pdf" if stored else None
            out.append(RevisionOut(length=end, sha256=digest, url=url))
        return out

    async def read_capped(request: Request) -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                raise _Refusal(413, f"upload larger than {cap} bytes")
        return bytes(body)

    class _Refusal(Exception):
        def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
            super().__init__(detail)
            self.status = status
            self.detail = detail
            self.retry_after = retry_after

    @app.exception_handler(_Refusal)
    async def refusal(request: Request, error: _Refusal) -> Response:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return JSONResponse({"detail": error.detail}, error.status, headers=headers)

    async def judged(pdf: bytes, password: str | None = None) -> DocumentVerdict:
        if not pdf:
            raise _Refusal(400, "the upload is empty: send the PDF's bytes")
        try:
            return await run_in_threadpool(verify, pdf, password)
        except SandboxBusy:
            raise _Refusal(429, "verification is busy: try again shortly", 2) from None
        except PasswordRequired as error:
            raise _Refusal(403, str(error)) from None
        except PdfCheckError as error:
            status = 422 if type(error).__name__ == "DocumentRefused" else 400
            raise _Refusal(status, str(error)) from None
        finally:
            memory.after(len(pdf))

    # -- JSON API --------------------------------------------------------------------------
    @app.get("/api/v1/serials/{serial}", response_model=SerialOut, responses=_ERRORS)
    def api_serial(serial: str) -> SerialOut:
        """The public facts of a serial: issued or not, when, value, document as recorded."""
        return _serial_out(facts(serial))

    @app.post(
        "/api/v1/documents:verify",
        response_model=DocumentOut,
        responses=_ERRORS,
        openapi_extra=_PDF_BODY,
    )
    async def api_verify(
        request: Request,
        password: Annotated[
            str | None,
            Header(
                alias="X-Document-Password",
                description="User or owner password of an encrypted PDF that the empty "
                "password does not open; used only to read the file.",
            ),
        ] = None,
    ) -> DocumentOut:
        """Verify every e-meterai seal of a PDF (the request body, ``application/pdf``)."""
        pdf = await read_capped(request)
        verdict = await judged(pdf, password)
        urls = revision_urls(pdf, verdict)
        return DocumentOut(
            verdict=verdict.verdict.value,  # type: ignore[arg-type]
            genuine=verdict.genuine,
            reasons=[reason.value for reason in verdict.reasons],
            other_signatures=verdict.other_signatures,
            seals=[
                SealOut(
                    serial=seal.serial,
                    verdict=seal.verdict.value,  # type: ignore[arg-type]
                    reasons=[reason.value for reason in seal.reasons],
                    signature_valid=seal.signature_valid,
                    trusted=seal.trusted,
                    coverage_ok=seal.coverage_ok,
                    serial_status=seal.serial_status,  # type: ignore[arg-type]
                    digest_matches=seal.digest_matches,
                    changes_after=[change.value for change in seal.changes],  # type: ignore[misc]
                    signing_time=seal.signing_time,
                    trusted_time=seal.timestamp_time,
                    level=seal.level,
                    stamped_revision=url,
                    document_type=seal.facts.document_type,
                    reseller_name=seal.facts.reseller_name,
                )
                for seal, url in zip(verdict.seals, urls, strict=True)
            ],
        )

    @app.get(
        "/api/v1/revisions/{sha256}.pdf",
        response_class=Response,
        responses={
            200: {"content": {"application/pdf": {}}, "description": "the stamped revision"},
            404: {"model": ErrorOut, "description": "not kept (upload the document again)"},
            429: _ERRORS[429],
        },
    )
    def api_revision(sha256: str) -> Response:
        """Download a stamped revision found in an earlier upload, by its SHA-256."""
        data = revisions.get(sha256.lower())
        if data is None:
            return JSONResponse(
                {"detail": "revision not kept: upload the document again"}, status_code=404
            )
        return Response(
            data,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="stamped-{sha256[:16]}.pdf"'},
        )

    # -- pages -----------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request) -> Response:
        serial = request.query_params.get("serial")
        if serial:
            target = f"{prefix}/{serial.strip().upper()}?lang={_lang(request)}"
            return RedirectResponse(target, status_code=303)
        return page(request, "home.html", _lang(request))

    if prefix:

        @app.get(prefix, response_class=HTMLResponse, include_in_schema=False)
        def prefix_home(request: Request) -> Response:
            return home(request)

    @app.get(f"{prefix}/{{serial}}", response_class=HTMLResponse, include_in_schema=False)
    def serial_page(request: Request, serial: str) -> Response:
        found = facts(serial)
        return page(
            request, "serial.html", _lang(request), facts=found, verdict=judge_serial(found).value
        )

    @app.post(f"{prefix}/verify", response_class=HTMLResponse, include_in_schema=False)
    async def verify_page(request: Request) -> Response:
        form = await request.form(max_files=1, max_fields=4, max_part_size=cap)
        lang = _lang(request, form.get("lang"))
        upload = form.get("pdf")
        password = form.get("password")
        pdf = b""
        if upload is not None and not isinstance(upload, str):
            pdf = await upload.read(cap + 1)
        if len(pdf) > cap:
            raise _Refusal(413, f"upload larger than {cap} bytes")
        try:
            verdict = await judged(pdf, password if isinstance(password, str) else None)
        except _Refusal as refusal:
            if refusal.status == 429:
                raise
            response = page(request, "document.html", lang, refused=refusal.detail)
            response.status_code = refusal.status
            return response
        urls = [None if r is None else r.url for r in revision_urls(pdf, verdict)]
        return page(request, "document.html", lang, verdict=verdict, revisions=urls, refused="")

    return Guard(app, config.guard)
