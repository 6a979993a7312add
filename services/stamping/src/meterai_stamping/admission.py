"""Admission control: say "later" at once instead of falling over.

Three limits, each answered with RESOURCE_EXHAUSTED, a ``grpc-retry-pushback-ms`` trailer the
client's retry policy honours, and a message a person can act on — never a hang:

* the **backlog** of documents waiting for the signing tier, above a high-water mark (the
  platform as a whole is saturated: adding workers helps, waiting helps), and optionally above
  a given amount of *work*: the backlog the platform finishes in ``backlog_max_wait_s`` at the
  rate it has been finishing documents, so an accepted document never waits longer than that,
  however many workers run today;
* a **rate limit** per reseller (token bucket), so one integration's loop cannot take every
  slot;
* an **in-flight cap** per reseller, so one reseller's 100,000-document batch cannot fill the
  signing queue ahead of another reseller's single document: the queue holds at most the cap
  for each, and everyone else's documents get in behind at most that many.

Samples of the backlog and in-flight counts are cached briefly, so the checks cost nothing per
call under load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from meterai_common import metrics

__all__ = ["Admission", "AdmissionLimits", "Arrival", "BrokerUnavailable", "Overloaded"]


class Overloaded(Exception):
    """Refused for now; ``pushback_ms`` says when to come back.

    :param reason: the stable reason code clients see (``ErrorInfo.reason``).
    :param quota_subject: set when a limit of the caller's own ran out (its rate, its
        documents in flight): reported as a ``QuotaFailure`` violation of that subject.
    """

    code = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        pushback_ms: int,
        label: str = "backlog",
        *,
        reason: str = "PLATFORM_BUSY",
        quota_subject: str | None = None,
    ) -> None:
        """:param label: the limit that refused, a label of ``meterai_submits_refused_total``.
        :param reason: the stable ``ErrorInfo`` reason the client reads."""
        super().__init__(f"{message}; nothing was charged, retry in {pushback_ms / 1000:g} s")
        self.pushback_ms = pushback_ms
        self.label = label
        self.reason = reason
        self.quota_subject = quota_subject


class BrokerUnavailable(Overloaded):
    """The signing queue cannot take messages (broker down or in a resource alarm)."""

    code = "UNAVAILABLE"

    def __init__(self, message: str, pushback_ms: int) -> None:
        super().__init__(message, pushback_ms, "broker", reason="SIGNING_QUEUE_UNAVAILABLE")


@dataclass(frozen=True)
class AdmissionLimits:
    backlog_high_water: int = 20_000
    backlog_max_wait_s: float = 0.0
    """0: off. Otherwise the backlog may hold at most this many seconds of work (never less
    than ``backlog_floor`` documents)."""
    backlog_floor: int = 16
    """Documents always admitted below the high-water mark, whatever the recent rate: enough to
    keep the signing tier busy while the rate is still unknown (a start, a quiet spell), so a
    low rate cannot keep admission strict, which would keep the rate low."""
    rate_sample_s: float = 1.0
    """How often the finishing rate is read (it moves slowly: it is a rate over seconds)."""
    reseller_rate_per_s: float = 200.0
    reseller_burst: int = 400
    reseller_max_inflight: int = 5_000
    sample_s: float = 0.25
    broker_grace_s: float = 5.0
    """How long publishing may fail before new documents are refused: a blip is absorbed by
    the outbox, an outage is told to clients instead of growing an unbounded backlog."""


class Arrival(NamedTuple):
    """What is known about a call when it arrives (:meth:`Admission.arrival`)."""

    refused: Overloaded | None
    platform_cleared: bool
    """The platform-wide limits (broker, backlog) are known to admit: :meth:`Admission.admit`
    need not judge them again after the call waited for a worker."""


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Admission:
    def __init__(
        self,
        backlog: Callable[[], int],
        inflight: Callable[[str], int],
        limits: AdmissionLimits,
        *,
        broker_failing_for: Callable[[], float] = lambda: 0.0,
        throughput: Callable[[], float] = lambda: 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        :param throughput: documents the platform has finished per second lately; read by
            :meth:`refresh` when ``limits.backlog_max_wait_s`` is set.
        """
        self._broker_failing_for = broker_failing_for
        self._throughput = throughput
        self._rate: tuple[float, float] = (float("-inf"), 0.0)
        self._backlog = backlog
        self._inflight = inflight
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._samples: dict[str, tuple[float, int]] = {}

    def _sample(self, key: str, read: Callable[[], int]) -> int:
        now = self._clock()
        with self._lock:
            cached = self._samples.get(key)
            if cached is not None and now - cached[0] < self._limits.sample_s:
                return cached[1]
            # Claim the refresh so concurrent calls keep using the old value meanwhile.
            self._samples[key] = (now, cached[1] if cached else 0)
        value = read()
        with self._lock:
            self._samples[key] = (now, value)
            if len(self._samples) > 100_000:
                self._samples.clear()
        return value

    def backlog(self) -> int:
        """The recently sampled number of documents waiting for the signing tier."""
        return self._sample("", self._backlog)

    def refresh(self) -> None:
        """Sample the backlog now.

        Run by the service more often than ``sample_s``, so that :meth:`arrival` always knows
        the backlog; otherwise only :meth:`admit` refreshes it, and under a surge the calls
        that would refresh it wait in the same queue as everything else.
        """
        now = self._clock()
        value = self._backlog()
        rate = None
        if (
            self._limits.backlog_max_wait_s > 0
            and now - self._rate[0] >= self._limits.rate_sample_s
        ):
            rate = self._throughput()
        with self._lock:
            self._samples[""] = (now, value)
            if rate is not None:
                self._rate = (now, rate)

    def admit(self, reseller_id: str, *, platform_cleared: bool = False) -> None:
        """Raise :class:`Overloaded` if this reseller's document must wait.

        :param platform_cleared: :meth:`arrival` cleared the platform-wide limits; the
            platform-wide limits are then not judged again, so a call let in at arrival is
            not refused after it waited for a worker.
        """
        if not platform_cleared:
            self._check_broker(self._broker_failing_for())
            self._check_backlog(self._sample("", self._backlog))
        self._take_token(reseller_id)
        self._check_inflight(self._sample(reseller_id, lambda: self._inflight(reseller_id)))
        metrics.SUBMITS_ADMITTED.inc()

    def arrival(self, reseller_id: str | None) -> Arrival:
        """Judge a call on arrival from what is already known.

        Takes no token, reads no count and waits for nothing, so it can run where nothing may
        block (on the server's network thread, before a call is queued for a worker). No
        refusal means "none known": counts sampled more than ``sample_s`` ago are not trusted,
        so the call goes on to :meth:`admit`, which refreshes them and decides for good.

        :param reseller_id: None when the caller is not known yet: only the platform-wide
            limits are judged.
        """
        now = self._clock()
        failing = self._broker_failing_for()
        with self._lock:
            backlog = self._fresh_sample("", now)
            inflight = bucket = None
            if reseller_id is not None:
                inflight = self._fresh_sample(reseller_id, now)
                bucket = self._buckets.get(reseller_id)
            tokens = None if bucket is None else self._refilled(bucket, now)
        cleared = backlog is not None and backlog < self._limits.backlog_high_water
        try:
            self._check_broker(failing)
            if backlog is not None:
                self._check_backlog(backlog)
            if tokens is not None and tokens < 1.0:
                raise self._rate_limited(tokens)
            if inflight is not None:
                self._check_inflight(inflight)
        except Overloaded as refused:
            return Arrival(refused, False)
        return Arrival(None, cleared)

    def _fresh_sample(self, key: str, now: float) -> int | None:
        cached = self._samples.get(key)
        if cached is None or now - cached[0] >= self._limits.sample_s:
            return None
        return cached[1]

    def _check_broker(self, failing: float) -> None:
        if failing > self._limits.broker_grace_s:
            raise BrokerUnavailable(
                f"the signing queue has not accepted work for {failing:.0f} s", 5000
            )

    def _check_backlog(self, backlog: int) -> None:
        limits = self._limits
        if backlog >= limits.backlog_high_water:
            raise Overloaded(
                f"the platform is busy: {backlog} documents are waiting to be signed", 2000
            )
        if limits.backlog_max_wait_s <= 0 or backlog < limits.backlog_floor:
            return
        rate = self._rate[1]
        if backlog >= rate * limits.backlog_max_wait_s:
            # Come back when about the work over the limit is done: the queue turns over.
            wait_s = backlog / rate if rate > 0 else limits.backlog_max_wait_s
            pushback_ms = int(min(5.0, max(0.25, wait_s - limits.backlog_max_wait_s)) * 1000)
            raise Overloaded(
                f"the platform is busy: {backlog} documents are waiting to be signed, about "
                f"{wait_s:.1f} s of work (limit {limits.backlog_max_wait_s:g} s)",
                pushback_ms,
                "backlog_wait",
            )

    def _check_inflight(self, inflight: int) -> None:
        limit = self._limits.reseller_max_inflight
        if inflight >= limit:
            raise Overloaded(
                f"you have {inflight} documents waiting to be signed (limit "
                f"{limit}); they are being processed",
                1000,
                "inflight",
                reason="RESELLER_INFLIGHT_LIMIT",
                quota_subject="reseller:documents_in_flight",
            )

    def _refilled(self, bucket: _Bucket, now: float) -> float:
        limits = self._limits
        return min(
            float(limits.reseller_burst),
            bucket.tokens + (now - bucket.stamp) * limits.reseller_rate_per_s,
        )

    def _rate_limited(self, tokens: float) -> Overloaded:
        rate = self._limits.reseller_rate_per_s
        wait_ms = int((1.0 - tokens) / rate * 1000) + 1
        return Overloaded(
            f"rate limit of {rate:g} documents per second reached",
            wait_ms,
            "rate_limit",
            reason="RESELLER_RATE_LIMIT",
            quota_subject="reseller:submissions_per_second",
        )

    def _take_token(self, reseller_id: str) -> None:
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(reseller_id)
            if bucket is None:
                bucket = self._buckets[reseller_id] = _Bucket(
                    float(self._limits.reseller_burst), now
                )
            bucket.tokens = self._refilled(bucket, now)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            refused = self._rate_limited(bucket.tokens)
        raise refused
