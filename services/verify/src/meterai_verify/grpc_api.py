"""VerificationService servicer: anyone may check a serial or a stamped PDF, no key needed.

A PDF is genuine when it carries at least one e-meterai seal and every seal's signature is
intact, valid and chains to the platform's root (checked by pyHanko's validator, which we did
not write), covers the document as signed, and names a serial the ledger has ISSUED against
the very digest that signature signed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from sqlalchemy import Engine

import meterai_quota as ledger
from meterai.verify.v1 import verify_pb2, verify_pb2_grpc
from meterai_common.db import reading
from meterai_common.grpc_errors import RequestError, status_from_errors
from meterai_common.proto_time import timestamp
from meterai_verify.pdf_check import PdfCheckError, check_pdf

__all__ = ["VerificationServicer"]

_STATUS = {
    "ISSUED": verify_pb2.SERIAL_STATUS_ISSUED,
    "VOID": verify_pb2.SERIAL_STATUS_VOID,
    "HELD": verify_pb2.SERIAL_STATUS_PENDING,
    "UNKNOWN": verify_pb2.SERIAL_STATUS_UNKNOWN,
}


class VerificationServicer(verify_pb2_grpc.VerificationServiceServicer):
    def __init__(self, engine: Engine, trust_roots: Callable[[], list[bytes]]) -> None:
        self._db = engine
        self._trust_roots = trust_roots

    def _serial(self, serial: str) -> Any:
        with reading(self._db) as conn:
            return ledger.verify_serial(conn, serial)

    def VerifySerial(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            info = self._serial(request.serial.strip().upper())
            return verify_pb2.SerialVerification(
                serial=info.serial,
                status=_STATUS[info.status],
                stamped_at=timestamp(info.stamped_at),
                document_digest=info.document_digest or "",
                document_type=info.document_type or "",
                reseller_id=str(info.reseller_id or ""),
                reseller_name=info.reseller_name or "",
            )

    def VerifyDocument(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            if not request.pdf:
                raise RequestError("INVALID_ARGUMENT", "pdf is empty: send the document's bytes")
            try:
                result = check_pdf(request.pdf, self._trust_roots())
            except PdfCheckError as error:
                raise RequestError("INVALID_ARGUMENT", str(error)) from None
            seals = [self._seal(signature) for signature in result.signatures if signature.serial]
            problem = "" if seals else "no e-meterai seal found in this document"
            genuine = bool(seals) and all(not seal.problem for seal in seals)
            return verify_pb2.DocumentVerification(genuine=genuine, seals=seals, problem=problem)

    def _seal(self, signature: Any) -> Any:
        info = self._serial(signature.serial)
        status = _STATUS[info.status]
        digest_matches = bool(info.document_digest) and (
            info.document_digest.lower() == (signature.message_digest or "").lower()
        )
        problems = []
        if not (signature.intact and signature.valid):
            problems.append("the signature does not match the document (altered or corrupt)")
        if signature.intact and signature.valid and not signature.trusted:
            problems.append("the signer is not the e-meterai issuer")
        if not signature.coverage_ok:
            problems.append("the document was changed after stamping in a way not permitted")
        if status != verify_pb2.SERIAL_STATUS_ISSUED:
            problems.append(f"serial {signature.serial} is {info.status.lower()}, not issued")
        elif not digest_matches:
            problems.append("the serial was issued for a different document")
        return verify_pb2.SealVerification(
            serial=signature.serial,
            field_name=signature.field_name or "",
            signature_valid=bool(signature.intact and signature.valid),
            trusted=bool(signature.trusted),
            coverage_ok=bool(signature.coverage_ok),
            serial_status=status,
            digest_matches=digest_matches,
            signing_time=timestamp(signature.signing_time),
            problem="; ".join(problems),
            level=signature.level,
            timestamp_time=timestamp(signature.timestamp_time),
        )
