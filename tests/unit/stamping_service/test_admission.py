"""Admission control answers "later" at once, with a reason and a time to come back."""

from __future__ import annotations

import pytest

from meterai_stamping.admission import Admission, AdmissionLimits, BrokerUnavailable, Overloaded


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _admission(
    clock: Clock,
    *,
    backlog: int = 0,
    inflight: dict[str, int] | None = None,
    broker_failing_for: float = 0.0,
    **limits: float,
) -> Admission:
    counts = inflight or {}
    return Admission(
        lambda: backlog,
        lambda reseller: counts.get(reseller, 0),
        AdmissionLimits(**limits),  # type: ignore[arg-type]
        broker_failing_for=lambda: broker_failing_for,
        clock=clock,
    )


def test_a_quiet_platform_admits() -> None:
    _admission(Clock()).admit("r1")


def test_a_backlog_above_the_high_water_mark_is_refused_with_pushback() -> None:
    with pytest.raises(Overloaded, match="2000 documents are waiting") as refused:
        _admission(Clock(), backlog=2000, backlog_high_water=2000).admit("r1")
    assert refused.value.code == "RESOURCE_EXHAUSTED"
    assert refused.value.pushback_ms > 0
    assert "nothing was charged" in str(refused.value)


def test_a_reseller_over_its_rate_waits_while_others_are_admitted() -> None:
    clock = Clock()
    admission = _admission(clock, reseller_rate_per_s=10, reseller_burst=3)
    for _ in range(3):
        admission.admit("busy")
    with pytest.raises(Overloaded, match="rate limit") as refused:
        admission.admit("busy")
    assert 0 < refused.value.pushback_ms <= 101
    admission.admit("quiet")
    clock.now += 0.1
    admission.admit("busy")


def test_one_resellers_batch_cannot_fill_the_queue_ahead_of_everyone() -> None:
    admission = _admission(Clock(), inflight={"big": 5000, "small": 0}, reseller_max_inflight=5000)
    with pytest.raises(Overloaded, match="5000 documents waiting"):
        admission.admit("big")
    admission.admit("small")


def test_a_broker_outage_past_the_grace_period_is_unavailable() -> None:
    _admission(Clock(), broker_failing_for=2.0, broker_grace_s=5.0).admit("r1")
    with pytest.raises(BrokerUnavailable) as refused:
        _admission(Clock(), broker_failing_for=9.0, broker_grace_s=5.0).admit("r1")
    assert refused.value.code == "UNAVAILABLE"


def test_counts_are_sampled_not_queried_on_every_call() -> None:
    clock = Clock()
    calls = []

    def backlog() -> int:
        calls.append(clock.now)
        return 0

    admission = Admission(backlog, lambda r: 0, AdmissionLimits(sample_s=0.25), clock=clock)
    for _ in range(100):
        admission.admit("r1")
    assert len(calls) == 1
    clock.now += 0.3
    admission.admit("r1")
    assert len(calls) == 2


def test_a_known_refusal_is_reported_without_taking_a_token_or_reading_a_count() -> None:
    clock = Clock()
    reads = []

    def backlog() -> int:
        reads.append(clock.now)
        return 2000

    admission = Admission(
        backlog,
        lambda r: 0,
        AdmissionLimits(backlog_high_water=2000, reseller_burst=1),
        clock=clock,
    )
    assert admission.arrival("r1").refused is None  # nothing sampled yet: the full check decides
    with pytest.raises(Overloaded):
        admission.admit("r1")
    refused = admission.arrival("r1").refused
    assert refused is not None and "2000 documents are waiting" in str(refused)
    assert len(reads) == 1
    clock.now += 0.3
    assert admission.arrival("r1").refused is None  # the sample is stale: the full check decides


def test_the_rate_limit_is_known_early_and_peeking_spends_nothing() -> None:
    clock = Clock()
    admission = _admission(clock, reseller_rate_per_s=10, reseller_burst=1)
    assert admission.arrival("busy").refused is None
    admission.admit("busy")
    refused = admission.arrival("busy").refused
    assert refused is not None and "rate limit" in str(refused)
    clock.now += 0.1
    assert admission.arrival("busy").refused is None
    assert admission.arrival("busy").refused is None
    admission.admit("busy")


def test_a_call_cleared_on_arrival_is_not_refused_later_for_the_backlog() -> None:
    clock = Clock()
    backlog = [0]
    admission = Admission(
        lambda: backlog[0], lambda r: 0, AdmissionLimits(backlog_high_water=100), clock=clock
    )
    assert not admission.arrival(None).platform_cleared  # nothing sampled yet
    admission.refresh()
    assert admission.arrival(None).platform_cleared
    backlog[0] = 150
    admission.refresh()  # the backlog moved while the call waited for a worker
    assert not admission.arrival(None).platform_cleared
    admission.admit("r1", platform_cleared=True)
    with pytest.raises(Overloaded):
        admission.admit("r1")
