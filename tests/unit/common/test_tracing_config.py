"""Traces are exported only when the operator names a collector, with the standard variables."""

from __future__ import annotations

from meterai_common import tracing


def test_without_a_collector_nothing_is_exported_and_no_context_is_carried() -> None:
    assert tracing.configure("stamping", environ={}) is False
    assert tracing.enabled() is False
    assert tracing.carrier_of_current() == {}
    assert tracing.server_interceptors() == []


def test_the_sdk_switch_wins_over_a_named_collector() -> None:
    environ = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
    assert tracing.configure("stamping", environ=environ) is False
    assert tracing.enabled() is False
