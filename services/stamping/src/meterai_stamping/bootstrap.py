"""Wires the stamping service: database, document store, outbox relay, event consumer, server."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import grpc
from sqlalchemy import Engine

import meterai_quota as ledger
from meterai.events.v1 import events_pb2
from meterai.signing.v1 import signing_pb2, signing_pb2_grpc
from meterai.stamping.v1 import stamping_pb2, stamping_pb2_grpc
from meterai_common.auth import Authenticator
from meterai_common.config import Settings
from meterai_common.db import reading
from meterai_common.documents import open_document_store
from meterai_common.grpc_server import RunningServer, TimedThreadPool, create_server
from meterai_common.messaging import (
    DEAD_LETTERS,
    SIGNING_QUEUE,
    STAMPING_EVENTS,
    earlier_deliveries,
)
from meterai_common.outages import is_database_outage
from meterai_common.outbox import OutboxRelay, oldest_pending_age
from meterai_common.runtime import Periodic, Transport
from meterai_common.tasks import SIGN_DIGEST_TASK
from meterai_common.tls import ClientTls, secure_channel
from meterai_stamping import engine as pdf_engine
from meterai_stamping.admission import Admission, AdmissionLimits
from meterai_stamping.batches import BatchBook
from meterai_stamping.domain.answer_batches import finishing_order
from meterai_stamping.drain_rate import DrainRate, finishes_in
from meterai_stamping.early_refusal import EarlyRefusal
from meterai_stamping.gauges import PlatformGauges
from meterai_stamping.grpc_api import StampingServicer
from meterai_stamping.handlers import Stamping, StampingConfig
from meterai_stamping.job_updates import ENDED_EVENTS, JobUpdates
from meterai_stamping.ltv import LongTermSettings, add_long_term_data

__all__ = ["FinishingRuntime", "StampingRuntime", "start_finishing", "start_stamping"]

log = logging.getLogger(__name__)

SERVICE_NAME = stamping_pb2.DESCRIPTOR.services_by_name["StampingService"].full_name
SUBMIT_METHOD = f"/{SERVICE_NAME}/SubmitDocument"
GRPC_THREADS = 3
"""Calls served at once. Submissions are CPU work under one interpreter lock: more threads
add no throughput, only contention that delays every answer, refusals included; further calls
wait in the server's queue, which admission keeps short. Measured in a surge at 330/s offered
with ``bench/e2e.py``'s topology: refusal p99 119-145 ms with 4 threads, 84-98 ms with 3, 59-98
ms with 2; documents accepted per second 61-66 with 4 and 63-65 with 3, but 51 with 2 (too
few threads to overlap a submission's database and disk waits)."""
MAX_CONCURRENT_CALLS = 256
"""gRPC's own limit refuses without a pushback, so it sits well above what the queue-wait
shedding lets wait; it only bounds memory if everything else fails."""
QUEUE_WAIT_TARGET_S = 0.05
"""New submissions are refused while the oldest queued one has waited longer than this and a
whole round of calls (``GRPC_THREADS``) is queued: a client sending a few calls at once to a
busy server is not an overload."""
SHARED_RELAY_POLL_S = 0.02
SHARED_RELAY_IDLE_POLL_S = 0.16
"""An idle shared relay backs off to this: 6 polls a second instead of 50 while nothing is
submitted, at most 160 ms more for the first document after a quiet spell."""
OUTBOX_NAMES = (SIGN_DIGEST_TASK, "DocumentStamped", "StampFailed")
"""What the stamping tier's relays publish: its broker user may publish nothing else."""
"""Outbox poll of a finishing worker, which publishes for stamping services without finishers."""
ADMISSION_RATE_WINDOW = timedelta(seconds=10)
"""The finishing rate that converts a wait limit (``METERAI_BACKLOG_MAX_WAIT_MS``) into
documents: long enough to smooth bursts, short enough to follow workers being added."""
ADMISSION_SAMPLE_S = 0.1
"""How often the backlog is sampled for admission, well inside ``AdmissionLimits.sample_s``."""


class SigningChain:
    """Asks the signing service once for its chain, then remembers it: how many bytes its
    CMS may take (the placeholder) and which certificate must have signed every answer."""

    def __init__(self, address: str, tls: ClientTls | None) -> None:
        self._address = address
        self._tls = tls
        self._chain: signing_pb2.CertificateChain | None = None
        self._lock = threading.Lock()

    def _fetch(self) -> signing_pb2.CertificateChain:
        with self._lock:
            if self._chain is None:
                with secure_channel(self._address, self._tls) as channel:
                    try:
                        self._chain = signing_pb2_grpc.SigningServiceStub(
                            channel
                        ).GetCertificateChain(
                            signing_pb2.GetCertificateChainRequest(),
                            timeout=10,
                            wait_for_ready=True,
                        )
                    except grpc.RpcError as error:
                        raise SigningUnavailable(
                            f"the signing service at {self._address} is unreachable "
                            f"({error.code().name}: {error.details()}); nothing was charged, "
                            "please retry"
                        ) from error
            return self._chain

    def signature_size(self) -> int:
        return self._fetch().signature_size

    def signer_certificate(self) -> bytes:
        """DER of the platform signer's certificate."""
        return bytes(self._fetch().certificates[0])


class SigningUnavailable(Exception):
    code = "UNAVAILABLE"
    pushback_ms = 1000
    """Retry advice (``RetryInfo``): the signing service is restarting or unreachable."""


@dataclass
class StampingRuntime:
    server: RunningServer
    servicer: StampingServicer
    stamping: Stamping
    relay: OutboxRelay | None
    chores: Periodic
    sampler: Periodic

    def stop(self, grace: float = 10.0, drain_delay: float = 0.0) -> None:
        self.servicer.stopping.set()
        self.server.stop(grace, drain_delay)
        self.sampler.stop()
        self.chores.stop()
        if self.relay is not None:
            self.relay.stop()


def _event_handler(stamping: Stamping):  # type: ignore[no-untyped-def]
    def handle(routing_key: str, body: bytes, message_id: str) -> None:
        if routing_key == "DigestSigned":
            signed = events_pb2.DigestSigned.FromString(body)
            stamping.digests_signed(
                [(signed.job_id, signed.serial, signed.cms)],
                {signed.job_id: signed.trace_context} if signed.trace_context else None,
            )
        elif routing_key == "SigningFailed":
            failed = events_pb2.SigningFailed.FromString(body)
            stamping.fail(failed.job_id, "INTERNAL", f"signing failed: {failed.reason}")
        elif routing_key == "SigningAnswers":
            # A batch's answers, finished in one transaction and acked together; delivered
            # again, one at a time (the answers already finished change nothing).
            answers = events_pb2.SigningAnswers.FromString(body)
            batch = [(a.job_id, a.serial, a.cms) for a in answers.signed]
            traces = {a.job_id: a.trace_context for a in answers.signed if a.trace_context}
            for part in finishing_order(batch, earlier_deliveries()):
                stamping.digests_signed(part, traces)
            for failed in answers.failed:
                stamping.fail(failed.job_id, "INTERNAL", f"signing failed: {failed.reason}")
        else:
            log.warning("stamping: ignoring unexpected event %s", routing_key)

    return handle


def _dead_letter_handler(stamping: Stamping):  # type: ignore[no-untyped-def]
    def handle(routing_key: str, body: bytes, message_id: str) -> None:
        source = SIGNING_QUEUE if routing_key == SIGNING_QUEUE else STAMPING_EVENTS.name
        stamping.dead_lettered(
            source, routing_key, body, f"delivery failed repeatedly (message {message_id})"
        )

    return handle


def offline_stamping(settings: Settings, db: Engine) -> Stamping:
    """The stamping service layer without a server, for operator commands (re-drive).

    Its outbox rows are published by the running stamping service's relay.
    """
    return Stamping(
        db, open_document_store(settings.documents, db), _stamping_config(settings, "admin")
    )


def _stamping_config(settings: Settings, identity: str) -> StampingConfig:
    """:param identity: the platform identity this process shows the signing service."""
    chain = SigningChain(settings.address("signing"), settings.client_tls(identity))
    return StampingConfig(
        verify_base_url=settings.verify_base_url,
        limits=pdf_engine.Limits(
            max_bytes=settings.max_document_bytes, max_pages=settings.max_document_pages
        ),
        signature_size=chain.signature_size,
        signer_certificate=chain.signer_certificate,
        long_term=_long_term(settings),
    )


def _long_term(settings: Settings) -> Callable[[bytes], bytes] | None:
    """B-LT / B-LTA finishing as configured, with the verification service's trust roots
    (the test PKI's root by default), read when the first document needs them."""
    level = settings.signature_level
    if level not in ("B-LT", "B-LTA"):
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    @functools.cache
    def long_term_settings() -> LongTermSettings:
        path = settings.trust_roots or settings.pki_dir / "root-ca.pem"
        roots = x509.load_pem_x509_certificates(path.read_bytes())
        return LongTermSettings(
            level=level,  # type: ignore[arg-type]
            trust_roots=tuple(root.public_bytes(Encoding.DER) for root in roots),
            timeout_s=settings.revocation_timeout_ms / 1000,
            tsa_url=settings.tsa_url,
            tsa_username=settings.tsa_username,
            tsa_password=settings.tsa_password,
        )

    return lambda pdf: add_long_term_data(pdf, long_term_settings())


def _finish_signed_documents(stamping: Stamping, transport: Transport, consumers: int) -> None:
    """Consume the signing tier's answers and the dead letters: the finishing half."""
    transport.subscribe(STAMPING_EVENTS, _event_handler(stamping), consumers=consumers)
    transport.subscribe(DEAD_LETTERS, _dead_letter_handler(stamping))


@dataclass
class FinishingRuntime:
    """A process that only finishes signed documents (``meterai worker finishing``)."""

    stamping: Stamping
    relay: OutboxRelay

    def stop(self) -> None:
        self.relay.stop()


def _relay(
    db: Engine, transport: Transport, poll_interval: float = 0.25, idle_poll: float = 0.25
) -> OutboxRelay:
    """The stamping tier's relay: its own rows only, sign requests sent in batches."""
    return OutboxRelay(
        db,
        transport.dispatch,
        poll_interval=poll_interval,
        idle_poll_interval=idle_poll,
        names=OUTBOX_NAMES,
        dispatch_many=transport.dispatch_many,
        grouped=(SIGN_DIGEST_TASK,),
    )


def start_finishing(settings: Settings, db: Engine, transport: Transport) -> FinishingRuntime:
    """Finish signed documents with ``settings.finishers`` consumers (at least one).

    Any number of these processes share the work with each other and with stamping services
    that finish too: each answer is consumed once, and finishing checks the job's state under
    its row lock, so a redelivered answer has one effect.
    """
    # Its relay also publishes what stamping services without finishers commit; they cannot
    # wake it, so it looks often.
    relay = _relay(db, transport, SHARED_RELAY_POLL_S, SHARED_RELAY_IDLE_POLL_S)
    store = open_document_store(settings.documents, db)
    stamping = Stamping(db, store, _stamping_config(settings, "finishing"), committed=relay.notify)
    _finish_signed_documents(stamping, transport, max(1, settings.finishers))
    relay.start()
    return FinishingRuntime(stamping, relay)


def start_stamping(settings: Settings, db: Engine, transport: Transport) -> StampingRuntime:
    """The stamping service: the resellers' gRPC API and, unless ``settings.finishers`` is 0,
    the finishing of signed documents and the outbox relay in the same process.

    With ``finishers`` 0 the process only answers: ``meterai worker finishing`` processes
    finish documents and publish its outbox, and the broker counts as failing once the oldest
    unpublished message is older than the admission grace period.
    """
    store = open_document_store(settings.documents, db)
    relay: OutboxRelay | None = None
    outbox_age: OutboxAge | None = None
    if settings.finishers > 0:
        relay = _relay(db, transport)
        stamping = Stamping(
            db, store, _stamping_config(settings, "stamping"), committed=relay.notify
        )
        _finish_signed_documents(stamping, transport, settings.finishers)
        relay.start()
        broker_failing_for: Callable[[], float] = relay.failing_for
    else:
        stamping = Stamping(db, store, _stamping_config(settings, "stamping"))
        outbox_age = broker_failing_for = OutboxAge(db)

    def resolve(key: str) -> object:
        with reading(db) as conn:
            return ledger.authenticate(conn, key)

    def resolve_certificate(reseller_id: str, der: bytes) -> object:
        with reading(db) as conn:
            return ledger.authenticate_certificate(conn, reseller_id, der)

    authenticator = Authenticator(resolve, resolve_certificate=resolve_certificate)
    updates = JobUpdates()
    transport.broadcast_to(ENDED_EVENTS, updates.handle)
    admission = Admission(
        stamping.backlog,
        stamping.inflight,
        AdmissionLimits(
            backlog_high_water=settings.backlog_high_water,
            backlog_max_wait_s=settings.backlog_max_wait_ms / 1000,
            reseller_rate_per_s=settings.reseller_rate_per_s,
            reseller_burst=settings.reseller_burst,
            reseller_max_inflight=settings.reseller_max_inflight,
        ),
        broker_failing_for=broker_failing_for,
        throughput=lambda: stamping.finishing_rate(ADMISSION_RATE_WINDOW),
    )
    servicer = StampingServicer(
        stamping,
        authenticator,
        admission,
        settings.verify_base_url,
        drain=DrainRate(finishes_in(db)),
        updates=updates,
        batches=BatchBook(store, stamping.submit, admission.admit),
    )
    pool = TimedThreadPool(GRPC_THREADS, thread_name_prefix="grpc-stamping")
    early_refusal = EarlyRefusal(
        SUBMIT_METHOD,
        admission,
        authenticator,
        lambda principal: principal.reseller_id,
        queue_wait=pool.oldest_wait,
        queued=pool.queued,
        min_queued=GRPC_THREADS,
        wait_target_s=QUEUE_WAIT_TARGET_S,
    )
    server = create_server(
        "stamping",
        settings.bind_host,
        settings.ports.stamping,
        [(stamping_pb2_grpc.add_StampingServiceServicer_to_server, servicer)],
        [SERVICE_NAME],
        interceptors=[early_refusal],
        pool=pool,
        max_concurrent_rpcs=MAX_CONCURRENT_CALLS,
        tls=settings.server_tls("stamping"),
        mtls_port=settings.ports.stamping_mtls,
    )
    gauges = PlatformGauges(db, settings.amqp_url)
    chores = Periodic("stamping-chores", 5.0, [stamping.redrive_stuck, gauges.sample])
    chores.start()
    samples = [admission.refresh] + ([outbox_age.sample] if outbox_age is not None else [])
    sampler = Periodic(
        "admission-sampler",
        ADMISSION_SAMPLE_S,
        [functools.partial(_unless_database_down, sample) for sample in samples],
    )
    sampler.start()
    return StampingRuntime(server, servicer, stamping, relay, chores, sampler)


class OutboxAge:
    """Seconds the oldest unpublished outbox message has waited, sampled off the hot path."""

    def __init__(self, db: Engine) -> None:
        self._db = db
        self._seconds = 0.0

    def sample(self) -> None:
        self._seconds = oldest_pending_age(self._db)

    def __call__(self) -> float:
        return self._seconds


def _unless_database_down(chore: Callable[[], None]) -> None:
    """Run ``chore``; an outage is already reported by the calls that need the database."""
    try:
        chore()
    except Exception as error:
        if not is_database_outage(error):
            raise
