"""The site's guard: token buckets per client, a cap on uploads in flight, memory bounded."""

from __future__ import annotations

from meterai_verify.rate_limits import client_address
from meterai_verify.web.app import RevisionStore
from meterai_verify.web.guard import InflightCap, TokenBuckets


def test_a_client_gets_its_burst_then_is_told_how_long_to_wait() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3, max_keys=10)
    assert [buckets.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", now=0.0) == 0.5
    assert buckets.take("a", now=0.5) == 0.0


def test_one_client_s_burst_does_not_limit_another() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=10)
    assert buckets.take("a", now=0.0) == 0.0
    assert buckets.take("a", now=0.0) > 0
    assert buckets.take("b", now=0.0) == 0.0


def test_buckets_forget_the_least_recent_client_beyond_their_bound() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=2)
    for client in ("a", "b", "c"):
        buckets.take(client, now=0.0)
    assert buckets.take("a", now=0.0) == 0.0  # forgotten, so a full bucket again
    assert buckets.take("c", now=0.0) > 0


def test_the_in_flight_cap_refuses_at_its_limit_and_frees_on_leave() -> None:
    cap = InflightCap(2)
    assert cap.enter() and cap.enter()
    assert not cap.enter()
    cap.leave()
    assert cap.enter()


def test_stamped_revisions_are_kept_within_their_byte_budget() -> None:
    store = RevisionStore(capacity=10)
    first = store.put(b"123456")
    second = store.put(b"abcdef")
    assert store.get(first) is None
    assert store.get(second) == b"abcdef"
    assert store.get(store.put(b"x" * 11)) is None


def test_a_grpc_peer_is_limited_by_its_address_not_its_port() -> None:
    assert client_address("ipv4:10.0.0.7:53211") == "10.0.0.7"
    assert client_address("ipv6:[::1]:40000") == "[::1]"
    assert client_address("unix:/tmp/socket") == "unix:/tmp/socket"
