"""Service logs are JSON lines with the job they concern, and never carry a secret."""

from __future__ import annotations

import json
import logging
import sys
import threading

import pytest

from meterai_common.logs import JsonLines, configure, log_context, redact

API_KEY = "mtk_" + "Zx9" * 14
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0" * 4


def _line(record_message: str, *args: object, **extra: object) -> dict[str, str]:
    logger = logging.getLogger("meterai.test")
    record = logger.makeRecord(
        logger.name, logging.WARNING, __file__, 1, record_message, args, None, extra=extra
    )
    return json.loads(JsonLines("stamping").format(record))


def test_a_line_is_one_json_object_with_the_fixed_keys() -> None:
    line = _line("job %s finished", "j-1")
    assert set(line) == {"time", "level", "logger", "process", "message"}
    assert line["message"] == "job j-1 finished"
    assert line["level"] == "warning"
    assert line["logger"] == "meterai.test"
    assert line["process"] == "stamping"
    assert line["time"].endswith("+00:00")


def test_fields_passed_with_the_call_are_keys_of_the_line() -> None:
    line = _line("signed", job_id="j-2", serial="MTR-1")
    assert (line["job_id"], line["serial"]) == ("j-2", "MTR-1")


def test_a_bound_context_reaches_every_line_of_its_block_and_nests() -> None:
    with log_context(reseller="r-1", job_id="j-3"):
        with log_context(serial="MTR-9"):
            inner = _line("inner")
        outer = _line("outer")
    after = _line("after")
    assert (inner["reseller"], inner["job_id"], inner["serial"]) == ("r-1", "j-3", "MTR-9")
    assert "serial" not in outer and outer["job_id"] == "j-3"
    assert "job_id" not in after


def test_a_context_is_its_own_threads_alone() -> None:
    seen: list[dict[str, str]] = []
    with log_context(job_id="j-main"):
        thread = threading.Thread(target=lambda: seen.append(_line("other thread")))
        thread.start()
        thread.join()
    assert "job_id" not in seen[0]


def test_an_unknown_context_field_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="document"), log_context(document="%PDF"):
        pass


@pytest.mark.parametrize(
    "secret",
    [API_KEY, WEBHOOK_SECRET, "Bearer " + API_KEY],
    ids=["api key", "webhook secret", "bearer token"],
)
def test_secrets_in_a_message_are_masked_but_their_kind_stays(secret: str) -> None:
    line = _line("caller sent %s", secret)
    assert secret not in line["message"]
    assert secret.split("_")[0].split(" ")[0] in line["message"]


def test_a_private_key_in_a_traceback_is_masked() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"
    logger = logging.getLogger("meterai.test")
    try:
        raise RuntimeError(f"could not load {pem}")
    except RuntimeError:
        record = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "load failed", (), sys.exc_info()
        )
    line = json.loads(JsonLines("signing").format(record))
    assert "MIIEvQIBADANBg" not in line["error"]
    assert "RuntimeError" in line["error"] and "(redacted)" in line["error"]


def test_text_lines_are_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure("platform", fmt="text")
        logging.getLogger("meterai.test").warning("key %s", API_KEY)
        for handler in root.handlers:
            handler.flush()
    finally:
        root.handlers[:], root.level = saved
    written = capsys.readouterr().err
    assert "key mtk_…" in written and API_KEY not in written


def test_an_unknown_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'json' or 'text'"):
        configure("platform", fmt="xml")


def test_redact_leaves_ids_and_serials_alone() -> None:
    text = "job 0f3c serial MTR-2026-000001 reseller r-7"
    assert redact(text) == text


def test_a_line_logged_inside_a_traced_span_carries_its_trace_id() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("finish stamp") as span:
        line = _line("finished")
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "trace_id" not in _line("outside any span")
