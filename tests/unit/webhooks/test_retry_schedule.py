"""The retry schedule: doubling from the base, never past the cap, jittered within [d/2, d]."""

from __future__ import annotations

from meterai_webhooks.schedule import retry_delay_s, schedule_s


def test_each_wait_doubles_until_the_cap_and_stays_within_its_jitter_band() -> None:
    longest = [retry_delay_s(n, 5.0, 3600.0, uniform=lambda low, high: high) for n in range(1, 14)]
    shortest = [retry_delay_s(n, 5.0, 3600.0, uniform=lambda low, high: low) for n in range(1, 14)]
    assert longest[:4] == [5.0, 10.0, 20.0, 40.0]
    assert longest[-1] == 3600.0 and max(longest) == 3600.0
    assert shortest == [value / 2 for value in longest]


def test_a_huge_attempt_number_is_still_capped() -> None:
    assert retry_delay_s(10_000, 5.0, 60.0, uniform=lambda low, high: high) == 60.0


def test_the_documented_schedule_lists_one_band_per_retry() -> None:
    bands = schedule_s(12, 5.0, 3600.0)
    assert len(bands) == 11
    assert bands[0] == (2.5, 5.0) and bands[-1] == (1800.0, 3600.0)
