"""SigningService servicer (internal): sign a digest synchronously, publish the chain."""

from __future__ import annotations

from typing import Any

import grpc

from meterai.signing.v1 import signing_pb2, signing_pb2_grpc
from meterai_common.grpc_errors import RequestError, status_from_errors
from meterai_signing.signer import Signer

__all__ = ["SigningServicer"]


class SigningServicer(signing_pb2_grpc.SigningServiceServicer):
    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def SignDigest(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            if request.digest_algorithm not in ("", "sha256"):
                raise RequestError("INVALID_ARGUMENT", "only sha256 digests are signed")
            cms = self._signer.sign(request.job_id, request.serial, request.digest)
            return signing_pb2.SignDigestResponse(cms=cms)

    def GetCertificateChain(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            return signing_pb2.CertificateChain(
                certificates=[c.dump() for c in self._signer.identity.certificates],
                signature_size=self._signer.signature_size,
            )
