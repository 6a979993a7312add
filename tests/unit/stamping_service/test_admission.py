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


def _timed(clock: Clock, backlog: list[int], rate: list[float], **limits: float) -> Admission:
    """Admission with a wait limit, a backlog and a finishing rate the test moves."""
    return Admission(
        lambda: backlog[0],
        lambda reseller: 0,
        AdmissionLimits(**limits),  # type: ignore[arg-type]
        throughput=lambda: rate[0],
        clock=clock,
    )


def test_a_backlog_over_the_wait_limit_is_refused_with_the_time_it_represents() -> None:
    clock, backlog, rate = Clock(), [49], [50.0]
    admission = _timed(clock, backlog, rate, backlog_max_wait_s=1.0)
    admission.refresh()
    admission.admit("r1")  # 49 documents at 50/s: under a second of work
    backlog[0] = 100
    admission.refresh()
    with pytest.raises(Overloaded, match=r"about 2.0 s of work \(limit 1 s\)") as refused:
        admission.admit("r1")
    assert refused.value.pushback_ms == 1000  # the second of work over the limit
    assert admission.arrival("r1").refused is not None  # known at the edge too


def test_the_wait_limit_follows_the_rate_as_workers_are_added() -> None:
    clock, backlog, rate = Clock(), [100], [50.0]
    admission = _timed(clock, backlog, rate, backlog_max_wait_s=1.0)
    admission.refresh()
    with pytest.raises(Overloaded):
        admission.admit("r1")
    rate[0] = 200.0
    admission.refresh()  # read again only after rate_sample_s
    with pytest.raises(Overloaded):
        admission.admit("r1")
    clock.now += 1.0
    admission.refresh()
    admission.admit("r1")  # 100 documents at 200/s: half a second of work


def test_below_the_floor_documents_are_admitted_whatever_the_rate() -> None:
    """A quiet platform has no recent rate; refusing then would keep the rate at zero."""
    clock, backlog, rate = Clock(), [15], [0.0]
    admission = _timed(clock, backlog, rate, backlog_max_wait_s=1.0, backlog_floor=16)
    admission.refresh()
    admission.admit("r1")
    backlog[0] = 16
    admission.refresh()
    with pytest.raises(Overloaded, match="documents are waiting"):
        admission.admit("r1")


def test_the_high_water_mark_still_applies_under_a_wait_limit() -> None:
    clock, backlog, rate = Clock(), [500], [1000.0]
    admission = _timed(clock, backlog, rate, backlog_max_wait_s=10.0, backlog_high_water=500)
    admission.refresh()
    with pytest.raises(Overloaded, match="500 documents are waiting to be signed;"):
        admission.admit("r1")


def test_without_a_wait_limit_the_rate_is_never_read() -> None:
    def unread() -> float:
        raise AssertionError("the rate was read")

    admission = Admission(lambda: 10_000, lambda r: 0, AdmissionLimits(), throughput=unread)
    admission.refresh()
    admission.admit("r1")
