"""``meterai up`` stops its runtimes with ``stop_all``: the metrics endpoint and the webhook
dispatcher stop through it like the servers, without a traceback at shutdown."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from meterai_common.bus import InProcessBus
from meterai_common.config import Settings
from meterai_common.db import create_engine
from meterai_common.metrics import serve_metrics
from meterai_common.runtime import InProcessTransport, stop_all
from meterai_webhooks.bootstrap import start_webhooks
from meterai_webhooks.config import WebhookSettings


def test_stop_all_stops_the_metrics_endpoint_and_the_dispatcher(
    sqlite_url: str, tmp_path: object
) -> None:
    settings = Settings.from_env({"DATABASE_URL": sqlite_url, "METERAI_HOME": str(tmp_path)})
    db = create_engine(sqlite_url)
    bus = InProcessBus()
    try:
        metrics = serve_metrics("embedded", "127.0.0.1", 0)
        dispatcher = start_webhooks(settings, WebhookSettings(), db, InProcessTransport(bus))
        urllib.request.urlopen(metrics.url, timeout=5).close()
        stop_all([dispatcher, metrics], 1.0, 0.5)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(metrics.url, timeout=2)
    finally:
        bus.stop()
        db.dispose()
