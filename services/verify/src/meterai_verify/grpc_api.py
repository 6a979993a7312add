"""VerificationService servicer: anyone may check a serial or a stamped PDF, no key needed.

The servicer only translates: the verdict is :mod:`meterai_verify.verdicts`' (the same the web
site shows), the PDF is parsed in a confined worker (:mod:`meterai_verify.sandbox`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import grpc
from sqlalchemy import Engine

import meterai_quota as ledger
from meterai.verify.v1 import verify_pb2, verify_pb2_grpc
from meterai_common.db import reading
from meterai_common.grpc_errors import RequestError, status_from_errors
from meterai_common.proto_time import timestamp
from meterai_verify.admission import InFlight
from meterai_verify.changes import Change
from meterai_verify.memory_return import MemoryReturn
from meterai_verify.pdf_check import PasswordRequired, PdfCheckError
from meterai_verify.rate_limits import TokenBuckets, client_address
from meterai_verify.sandbox import Sandbox, SandboxBusy
from meterai_verify.serial_facts import SerialFacts, serial_facts
from meterai_verify.verdicts import Reason, SealVerdict, Verdict, judge_document

__all__ = ["VerificationServicer"]

_STATUS = {
    "ISSUED": verify_pb2.SERIAL_STATUS_ISSUED,
    "VOID": verify_pb2.SERIAL_STATUS_VOID,
    "HELD": verify_pb2.SERIAL_STATUS_PENDING,
    "PENDING": verify_pb2.SERIAL_STATUS_PENDING,
    "UNKNOWN": verify_pb2.SERIAL_STATUS_UNKNOWN,
}
_VERDICT = {
    Verdict.GENUINE: verify_pb2.VERDICT_GENUINE,
    Verdict.MODIFIED: verify_pb2.VERDICT_MODIFIED,
    Verdict.NOT_GENUINE: verify_pb2.VERDICT_NOT_GENUINE,
}
_CHANGE = {
    Change.FORM_FILLING: verify_pb2.CHANGE_FORM_FILLING,
    Change.ANNOTATIONS: verify_pb2.CHANGE_ANNOTATIONS,
    Change.SIGNATURES: verify_pb2.CHANGE_SIGNATURES,
    Change.CONTENT: verify_pb2.CHANGE_CONTENT,
    Change.VALIDATION_DATA: verify_pb2.CHANGE_VALIDATION_DATA,
}
SLOT_WAIT_S = 2.0
"""How long a VerifyDocument call waits for a free verification worker before pushback."""
SERIAL_LOOKUPS_PER_S = 20.0
SERIAL_LOOKUP_BURST = 60
"""VerifySerial per client address, as on the web site: a checker needs a few, a scan many."""
QUEUED_PER_WORKER = 1
"""VerifyDocument calls allowed to wait for a worker, per worker; more are refused at once,
so the server does not hold many uploads in memory while they wait."""


class VerificationServicer(verify_pb2_grpc.VerificationServiceServicer):
    def __init__(
        self,
        engine: Engine,
        trust_roots: Callable[[], list[bytes]],
        sandbox: Sandbox | None = None,
        memory: MemoryReturn | None = None,
    ) -> None:
        self._db = engine
        self._trust_roots = trust_roots
        self._sandbox = sandbox or Sandbox()
        self._lookups = TokenBuckets(SERIAL_LOOKUPS_PER_S, SERIAL_LOOKUP_BURST, 100_000)
        self.in_flight = InFlight(self._sandbox.limits.concurrency * (1 + QUEUED_PER_WORKER))
        """Calls verifying or waiting; :class:`~meterai_verify.admission.BusyRefusal` refuses
        new ones before their upload is read while it is full."""
        self.memory = memory or MemoryReturn()
        """Gives the heap back after large uploads (see :mod:`meterai_verify.memory_return`)."""

    def _facts(self, serial: str) -> SerialFacts:
        with reading(self._db) as conn:
            return serial_facts(conn, serial)

    def VerifySerial(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            wait = self._lookups.take(client_address(context.peer()))
            if wait:
                raise _busy(
                    "too many serial lookups: slow down",
                    max(1, math.ceil(wait * 1000)),
                    "SERIAL_LOOKUP_RATE_LIMIT",
                )
            serial = request.serial.strip().upper()
            if not ledger.is_well_formed(serial):
                # A typo is told as a typo here (the web page just says "unknown").
                raise ledger.MalformedSerial(
                    "not a well-formed meterai serial; check for typing mistakes"
                )
            facts = self._facts(serial)
            return verify_pb2.SerialVerification(
                serial=facts.serial,
                status=_STATUS[facts.status],
                stamped_at=timestamp(facts.stamped_at),
                document_digest=facts.document_digest or "",
                document_type=facts.document_type or "",
                reseller_name=facts.reseller_name or "",
                trusted_time=timestamp(facts.trusted_time),
            )

    def VerifyDocument(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            if not request.pdf:
                raise RequestError("INVALID_ARGUMENT", "pdf is empty: send the document's bytes")
            if not self.in_flight.enter():
                raise _busy("verification is busy: retry in 1 s", 1000, "VERIFICATION_BUSY")
            try:
                checked = self._sandbox.check(
                    request.pdf,
                    self._trust_roots(),
                    wait_s=SLOT_WAIT_S,
                    password=request.password or None,
                )
            except SandboxBusy:
                raise _busy(
                    "every verification worker is busy: retry in 1 s", 1000, "VERIFICATION_BUSY"
                ) from None
            except PasswordRequired as error:
                raise RequestError("FAILED_PRECONDITION", str(error)) from None
            except PdfCheckError as error:
                raise RequestError("INVALID_ARGUMENT", str(error)) from None
            finally:
                self.in_flight.leave()
                self.memory.after(len(request.pdf))
            verdict = judge_document(checked, self._facts)
            return verify_pb2.DocumentVerification(
                genuine=verdict.genuine,
                seals=[_seal(seal) for seal in verdict.seals],
                problem=verdict.problem,
                verdict=_VERDICT[verdict.verdict],
                other_signatures=verdict.other_signatures,
            )


def _seal(seal: SealVerdict) -> Any:
    return verify_pb2.SealVerification(
        serial=seal.serial,
        field_name=seal.field_name,
        signature_valid=seal.signature_valid,
        trusted=seal.trusted,
        coverage_ok=seal.coverage_ok and Reason.CHANGED_AFTER_STAMPING not in seal.reasons,
        serial_status=_STATUS[seal.serial_status],
        digest_matches=seal.digest_matches,
        signing_time=timestamp(seal.signing_time),
        problem=seal.problem,
        level=seal.level,
        timestamp_time=timestamp(seal.timestamp_time),
        verdict=_VERDICT[seal.verdict],
        changes_after=[_CHANGE[change] for change in seal.changes],
        reasons=[reason.value for reason in seal.reasons],
        stamped_revision_length=seal.signed_revision_end,
    )


def _busy(message: str, pushback_ms: int, reason: str) -> RequestError:
    """A RESOURCE_EXHAUSTED refusal carrying its retry advice (``RetryInfo`` and the
    pushback trailer, added by :func:`~meterai_common.grpc_errors.details_of`)."""
    error = RequestError("RESOURCE_EXHAUSTED", message, reason=reason)
    error.pushback_ms = pushback_ms  # type: ignore[attr-defined]
    return error
