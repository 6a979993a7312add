"""The signing tier's one job: turn a job's digest into a CMS and announce it.

The signer never sees documents: the stamping service sends the SHA-256 of the prepared byte
ranges, and gets back a ``DigestSigned`` event carrying the CMS. This is what lets signing
workers scale out on CPU alone and, later, sit next to an HSM.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from opentelemetry.trace import SpanKind

from meterai.events.v1 import events_pb2
from meterai_common import metrics, tracing
from meterai_common.messaging import Unroutable
from meterai_signing.cms import SigningIdentity, load_identity, sign_digest, signature_size
from meterai_signing.errors import SigningError, SigningUnavailable
from meterai_signing.job_check import CommittedJobs, SignRequest
from meterai_signing.pki import ensure_test_pki
from meterai_signing.timestamps import TimestampSource

__all__ = [
    "EventSink",
    "InvalidSignRequest",
    "SignatureMade",
    "Signer",
    "load_signer_identity",
]

log = logging.getLogger(__name__)
signatures_log = logging.getLogger("meterai.signatures")
"""One line per signature made or refused, with job, serial and digest: the signing tier's
record of what the platform key was used for."""

_SERIAL = re.compile(r"^[0-9A-Z]{22}$")


class InvalidSignRequest(Exception):
    """A request no retry can fix (bad digest, bad serial): answered by SigningFailed."""

    code = "INVALID_ARGUMENT"


@dataclass(frozen=True)
class SignatureMade:
    """What the audit trail records of every signature the platform key makes."""

    job_id: str
    serial: str
    digest: str
    """Hex SHA-256 of the document's signed byte ranges."""
    key_label: str
    timestamped: bool
    """Whether the signature carries an RFC 3161 timestamp (PAdES B-T)."""


class EventSink(Protocol):
    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None: ...


@dataclass(frozen=True)
class _Paths:
    key: Path
    chain: Path


def load_signer_identity(key: Path | None, chain: Path | None, pki_dir: Path) -> SigningIdentity:
    """Load the configured key, or a generated test PKI when none is configured (dev only)."""
    if key is None or chain is None:
        if key is not None or chain is not None:
            raise ValueError("set both METERAI_SIGNING_KEY and METERAI_SIGNING_CHAIN, or neither")
        pki = ensure_test_pki(pki_dir)
        log.warning("no signing key configured: using the generated TEST key in %s", pki_dir)
        key, chain = pki.signer_key, pki.chain
    return load_identity(key, chain)


def _request_of(item: Mapping[str, object]) -> SignRequest | None:
    """The (job, serial, digest) of one request of a task, or None when it is not three
    strings (nothing a committed job could match)."""
    fields = (item.get("job_id"), item.get("serial"), item.get("digest"))
    if all(isinstance(value, str) for value in fields):
        return fields  # type: ignore[return-value]
    return None


def _refuse(item: Mapping[str, object]) -> None:
    signatures_log.warning(
        "refused to sign job=%s serial=%s digest=%s: no committed job waits for a "
        "signature over this digest",
        str(item.get("job_id"))[:64],
        str(item.get("serial"))[:64],
        str(item.get("digest"))[:128],
        extra={"job_id": str(item.get("job_id"))[:64], "serial": str(item.get("serial"))[:64]},
    )


def _one_line(text: str, limit: int = 180) -> str:
    """A failure reason the ledger accepts: printable, one line, short (errors from parsers
    quote the bytes they choked on)."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return (flat[: limit - 1] + "…") if len(flat) > limit else flat or "signing failed"


class Signer:
    def __init__(
        self,
        identity: SigningIdentity,
        jobs: CommittedJobs,
        events: Callable[[], EventSink] | None = None,
        *,
        timestamper: TimestampSource | None = None,
        signed: Callable[[SignatureMade], None] | None = None,
        timestamp_attempts: int = 3,
        publish_patience_s: float = 40.0,
    ) -> None:
        """
        :param jobs: where a task's job, serial and digest are checked against what the
            stamping tier committed before the key is used.
        :param events: gives the publisher for DigestSigned/SigningFailed; a factory so each
            forked worker process opens its own broker connection lazily.
        :param timestamper: the timestamp authority (PAdES B-T); ``None`` signs B-B.
        :param signed: told of every signature made, before it is announced (the audit trail).
        :param timestamp_attempts: tries of an unreachable authority per delivery of a task.
        :param publish_patience_s: how long an answer the broker refuses is tried again before
            the task fails (and the job waits for its re-drive).
        """
        self.identity = identity
        self._jobs = jobs
        self.timestamper = timestamper
        self._signature_size: int | None = None
        self._signed = signed
        self._timestamp_attempts = max(1, timestamp_attempts)
        self._publish_patience_s = publish_patience_s
        self._events = events
        self._sink: EventSink | None = None
        self._sink_pid = 0
        self._lock = threading.Lock()

    @metrics.SIGNING_SECONDS.time()
    def sign(self, job_id: str, serial: str, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise InvalidSignRequest(f"digest must be 32 bytes of SHA-256, got {len(digest)}")
        if not _SERIAL.match(serial):
            raise InvalidSignRequest(f"serial {serial!r} is not a meterai serial")
        cms = self._sign_with_retries(digest)
        if self._signed is not None:
            made = SignatureMade(
                job_id=job_id,
                serial=serial,
                digest=digest.hex(),
                key_label=self.identity.key_label,
                timestamped=self.timestamper is not None,
            )
            self._signed(made)
        signatures_log.info(
            "signed job=%s serial=%s digest=%s",
            job_id,
            serial,
            digest.hex(),
            extra={"job_id": job_id, "serial": serial},
        )
        return cms

    @property
    def signature_size(self) -> int:
        """Bytes the CMS may take: the key's bound plus, with B-T, the authority's token bound.

        :raises SigningUnavailable: with B-T, when the bound must be measured and the timestamp
            authority is away (the stamping service then refuses, charging nothing).
        """
        if self._signature_size is None:
            bound = 0 if self.timestamper is None else self.timestamper.token_size_bound
            self._signature_size = signature_size(self.identity, bound)
        return self._signature_size

    def _sign_with_retries(self, digest: bytes) -> bytes:
        for attempt in range(1, self._timestamp_attempts + 1):
            try:
                return sign_digest(self.identity, digest, self.timestamper)
            except SigningUnavailable:
                if attempt == self._timestamp_attempts:
                    raise
                log.warning("signing unavailable (attempt %d); retrying", attempt)
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def sign_and_announce(self, job_id: str, serial: str, digest: str) -> None:
        """Sign and publish the outcome, for a job the stamping tier committed only.

        A task for no such job (forged, or for a job that ended) is refused and logged, and
        nothing is published: a refusal must not end a real job either. A bad request is
        announced as SigningFailed (no retry helps); a broker or database failure raises so
        the task is delivered again.

        :param digest: hex SHA-256 of the prepared document's byte ranges.
        """
        self.sign_and_announce_many([{"job_id": job_id, "serial": serial, "digest": digest}])

    def sign_and_announce_many(self, items: Sequence[Mapping[str, object]]) -> None:
        """:meth:`sign_and_announce` for a batch: one database read checks every request,
        each document is signed (or refused, or failed) by itself, and the answers leave in
        one message (``SigningAnswers``), so the batch costs one publish and one confirm.

        When the key's token or the timestamp authority goes away mid-batch, the answers made
        so far are published before :class:`SigningUnavailable` is raised (the task is tried
        again; answering a document twice is harmless, the stamping service keeps the first).
        """
        requests = [_request_of(item) for item in items]
        waiting = self._jobs.awaiting_among([r for r in requests if r is not None])
        answers = events_pb2.SigningAnswers()
        try:
            for item, request in zip(items, requests, strict=True):
                if request is None or request not in waiting:
                    _refuse(item)
                    continue
                job_id, serial, digest = request
                parent = item.get("trace")
                with tracing.span(
                    "sign digest",
                    parent=parent if isinstance(parent, Mapping) else None,
                    kind=SpanKind.CONSUMER,
                    attributes={"meterai.job_id": job_id, "meterai.serial": serial},
                ):
                    trace_context = tracing.carrier_of_current()
                    try:
                        cms = self.sign(job_id, serial, bytes.fromhex(digest))
                    except SigningUnavailable:
                        raise  # a SigningError, but one a later delivery can get past
                    except (ValueError, InvalidSignRequest, SigningError) as error:
                        answers.failed.add(
                            job_id=job_id,
                            reason=_one_line(str(error)),
                            trace_context=trace_context,
                        )
                        continue
                answers.signed.add(
                    job_id=job_id, serial=serial, cms=cms, trace_context=trace_context
                )
        finally:
            # SigningUnavailable (the token or the timestamp authority is away) leaves the
            # rest unanswered: those jobs keep waiting, the task is delivered again, and the
            # stamping service re-drives jobs that stay unanswered until their deadline.
            self._announce(answers)

    def _announce(self, answers: events_pb2.SigningAnswers) -> None:
        """One answer as its own event (what a single request always got); several as one
        ``SigningAnswers``, or one by one on a broker that routes no ``SigningAnswers``."""
        count = len(answers.signed) + len(answers.failed)
        if count == 0:
            return
        if count > 1:
            ids = ",".join(
                sorted([a.job_id for a in answers.signed] + [f.job_id for f in answers.failed])
            )
            message_id = "answers-" + hashlib.sha256(ids.encode()).hexdigest()[:32]
            try:
                self._publish("SigningAnswers", answers.SerializeToString(), message_id)
                return
            except Unroutable:
                log.warning("the broker routes no SigningAnswers; answering one by one")
        for signed in answers.signed:
            self._publish("DigestSigned", signed.SerializeToString(), f"signed-{signed.job_id}")
        for failed in answers.failed:
            self._publish("SigningFailed", failed.SerializeToString(), f"failed-{failed.job_id}")

    def _publish(self, routing_key: str, body: bytes, message_id: str) -> None:
        if self._events is None:
            raise RuntimeError("this signer has no event publisher configured")
        # Patient enough to outlast a quorum queue's leader election: when the node leading
        # ``stamping.events`` dies, the survivors refuse (nack) publishes until they elect a
        # new leader, which took up to 25 s on a fully loaded host (bench/cpns_day.py). Giving
        # up sooner fails the task, and the job then waits a minute for the stamping
        # service's re-drive; the signature is already made and only needs announcing.
        deadline = time.monotonic() + self._publish_patience_s
        attempt, pause = 0, 0.2
        while True:
            attempt += 1
            try:
                self._sink_for_process().publish(routing_key, body, message_id=message_id)
                return
            except Unroutable:
                raise  # no retry routes it; the caller decides
            except Exception:
                if time.monotonic() + pause > deadline:
                    raise
                log.warning("publishing %s failed (attempt %d); retrying", routing_key, attempt)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _sink_for_process(self) -> EventSink:
        with self._lock:
            if self._sink is None or self._sink_pid != os.getpid():
                assert self._events is not None
                self._sink = self._events()
                self._sink_pid = os.getpid()
            return self._sink
