"""The metrics every process exposes follow Prometheus naming: one prefix, base units,
``_total`` on counters, and labels that cannot explode (no reseller, job or serial)."""

from __future__ import annotations

import re

import pytest
from prometheus_client import Counter, Gauge, Histogram

from meterai_common import metrics

FAMILIES = [
    value for value in vars(metrics).values() if isinstance(value, Counter | Gauge | Histogram)
]
BOUNDED_LABELS = {"method", "code", "reason", "queue", "state", "kind"}


def _family(metric: Counter | Gauge | Histogram) -> tuple[str, str]:
    (described,) = metric.describe()
    return described.name, described.type


def test_every_metric_is_registered_in_the_process_registry() -> None:
    registered = {name for name, _ in map(_family, FAMILIES)}
    exposed = {family.name for family in metrics.REGISTRY.collect()}
    assert registered <= exposed
    assert len(FAMILIES) >= 15


@pytest.mark.parametrize("metric", FAMILIES, ids=lambda m: _family(m)[0])
def test_names_follow_prometheus_conventions(metric: Counter | Gauge | Histogram) -> None:
    name, kind = _family(metric)
    assert re.fullmatch(r"meterai_[a-z][a-z0-9_]*", name), name
    assert not name.endswith("_total"), "the client library appends _total to counters"
    if kind == "histogram":
        assert name.endswith("_seconds"), f"{name}: durations are in seconds"
    if kind == "gauge" and ("_age" in name or "_timestamp" in name):
        assert name.endswith("_seconds"), f"{name}: times are in seconds"
    assert set(metric._labelnames) <= BOUNDED_LABELS, metric._labelnames


def test_counters_are_exposed_with_the_total_suffix() -> None:
    names = metrics.exposed_names()
    for expected in (
        "meterai_grpc_server_handled_total",
        "meterai_submits_admitted_total",
        "meterai_submits_refused_total",
        "meterai_stamps_done_total",
        "meterai_stamps_failed_total",
        "meterai_stamps_refunded_total",
        "meterai_grpc_server_handling_seconds_bucket",
        "meterai_signing_duration_seconds_count",
        "meterai_backlog_oldest_age_seconds",
        "meterai_outbox_oldest_age_seconds",
    ):
        assert expected in names, expected
    assert "meterai_stamps_done" not in {n for n in names if n.endswith("_total")}


@pytest.mark.parametrize(("raw", "port"), [("", None), ("0", 0), ("9464", 9464), (" 9100 ", 9100)])
def test_metrics_port_comes_from_the_environment(raw: str, port: int | None) -> None:
    assert metrics.metrics_port({"METRICS_PORT": raw}) == port
    assert metrics.metrics_port({}) is None


@pytest.mark.parametrize("raw", ["http", "-1", "70000"])
def test_a_bad_metrics_port_is_refused_with_its_value(raw: str) -> None:
    with pytest.raises(ValueError, match="METRICS_PORT"):
        metrics.metrics_port({"METRICS_PORT": raw})
