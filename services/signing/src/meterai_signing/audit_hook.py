"""The signing service's side of the audit trail: every signature is recorded before it is
announced, and the chain head is signed with the platform key every so often.

No audit, no signature: when the database cannot take the event the signature is not
announced (:class:`~meterai_signing.errors.SigningUnavailable`, so the task is tried again), and
a signature that left the service is always in the trail.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from asn1crypto import x509
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from meterai_common import audit
from meterai_common.config import Settings
from meterai_common.db import create_engine, transaction
from meterai_signing.cms import SigningIdentity
from meterai_signing.errors import SigningUnavailable
from meterai_signing.keys import KeySigner
from meterai_signing.signer import SignatureMade

__all__ = ["PlatformCheckpointSigner", "audit_recorder", "record_signature"]


class PlatformCheckpointSigner:
    """The platform key and its certificate, as :func:`meterai_common.audit.checkpoint` wants."""

    def __init__(self, key: KeySigner, certificate: x509.Certificate) -> None:
        self._key = key
        self._certificate_der: bytes = certificate.dump()

    @property
    def key_label(self) -> str:
        return self._key.key_label

    @property
    def algorithm(self) -> str:
        return self._key.algorithm

    @property
    def certificate_der(self) -> bytes:
        return self._certificate_der

    def sign_raw(self, data: bytes) -> bytes:
        return self._key.sign_raw(data)


def record_signature(
    engine: Engine,
    made: SignatureMade,
    checkpoints: PlatformCheckpointSigner,
    checkpoint_every: int,
) -> None:
    """Chain a ``signature_made`` event, and a checkpoint when one is due, in one commit."""
    event = audit.AuditEvent(
        kind=audit.EventKind.SIGNATURE_MADE,
        subject=made.serial,
        details={
            "job_id": made.job_id,
            "serial": made.serial,
            "digest": made.digest,
            "key_label": made.key_label,
            "timestamped": made.timestamped,
        },
    )
    try:
        with transaction(engine) as conn:
            audit.record(conn, event)
            if audit.checkpoint_due(conn, checkpoint_every):
                audit.checkpoint(conn, checkpoints)
    except SQLAlchemyError as exc:
        raise SigningUnavailable(
            f"the audit trail cannot record the signature ({type(exc).__name__}); "
            "the signature is held back and the job tried again"
        ) from exc


def audit_recorder(
    settings: Settings, identity: SigningIdentity
) -> Callable[[SignatureMade], None]:
    """A ``signed`` hook for :class:`~meterai_signing.signer.Signer` writing to the platform
    database; the engine is opened lazily in each process (Celery forks after start-up)."""
    checkpoints = PlatformCheckpointSigner(identity.key, identity.signer_certificate)
    lock = threading.Lock()
    engines: dict[int, Engine] = {}

    def engine() -> Engine:
        with lock:
            pid = os.getpid()
            if pid not in engines:
                engines[pid] = create_engine(settings.database_url, pool_size=2, max_overflow=2)
            return engines[pid]

    def signed(made: SignatureMade) -> None:
        record_signature(engine(), made, checkpoints, settings.audit_checkpoint_every)

    return signed
