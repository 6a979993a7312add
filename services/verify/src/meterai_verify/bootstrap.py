"""Wires the verification service: the ledger for serials, the trust roots for PDFs."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine

from meterai.verify.v1 import verify_pb2, verify_pb2_grpc
from meterai_common.config import Settings
from meterai_common.grpc_errors import RequestError
from meterai_common.grpc_server import RunningServer, create_server
from meterai_verify.admission import BusyRefusal
from meterai_verify.grpc_api import VerificationServicer
from meterai_verify.sandbox import Sandbox

__all__ = ["start_verify", "trust_roots_for"]

TEST_ROOT = "root-ca.pem"
"""Root of the generated test PKI in ``$METERAI_HOME/pki`` (embedded platform, tests)."""

SERVICE_NAME = verify_pb2.DESCRIPTOR.services_by_name["VerificationService"].full_name


@cache
def _load_roots(path: Path) -> list[bytes]:
    certificates = x509.load_pem_x509_certificates(path.read_bytes())
    return [certificate.public_bytes(Encoding.DER) for certificate in certificates]


def trust_roots_for(settings: Settings) -> Callable[[], list[bytes]]:
    """The DER roots seals must chain to, read when first needed (and cached)."""

    def trust_roots() -> list[bytes]:
        path = settings.trust_roots or settings.pki_dir / TEST_ROOT
        if not path.exists():
            raise RequestError(
                "UNAVAILABLE",
                "verification is not configured: no trust roots (set METERAI_TRUST_ROOTS)",
            )
        return _load_roots(path)

    return trust_roots


def start_verify(settings: Settings, db: Engine) -> RunningServer:
    trust_roots = trust_roots_for(settings)
    sandbox = Sandbox()
    sandbox.warm()
    servicer = VerificationServicer(db, trust_roots, sandbox)
    refusal = BusyRefusal(f"/{SERVICE_NAME}/VerifyDocument", servicer.in_flight, servicer.memory)
    return create_server(
        "verify",
        settings.bind_host,
        settings.ports.verify,
        [(verify_pb2_grpc.add_VerificationServiceServicer_to_server, servicer)],
        [SERVICE_NAME],
        interceptors=[refusal],
        tls=settings.server_tls("verify"),
    )
