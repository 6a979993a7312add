"""SigningService servicer (internal): publishes the signer's chain and CMS size bound.

There is deliberately no RPC that signs: a signature is made only for a committed job, from
the signing queue (:meth:`Signer.sign_and_announce`)."""

from __future__ import annotations

from typing import Any

import grpc

from meterai.signing.v1 import signing_pb2, signing_pb2_grpc
from meterai_common.grpc_errors import status_from_errors
from meterai_signing.signer import Signer

__all__ = ["SigningServicer"]


class SigningServicer(signing_pb2_grpc.SigningServiceServicer):
    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def GetCertificateChain(self, request: Any, context: grpc.ServicerContext) -> Any:
        with status_from_errors(context):
            return signing_pb2.CertificateChain(
                certificates=[c.dump() for c in self._signer.identity.certificates],
                signature_size=self._signer.signature_size,
            )
