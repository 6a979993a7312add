"""A signing worker whose first listed broker node is down works within seconds.

Celery's native delayed delivery step tried every listed URL, with 1, 3 and 5 s pauses, before
the worker consumed anything: a worker that lost (or started without) the node listed first in
``AMQP_URL`` did nothing for 10-17 s. The signing worker runs Celery's consumer without that
step (``meterai_signing/worker_consumer.py``). Here a real Celery worker process, configured as
``meterai worker signing`` configures it, is given a dead address first and a live one second,
and must run a task sent after it started well before the step's pauses alone would end.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pika

from meterai_common.messaging import SIGNING_QUEUE, declare_topology
from meterai_common.tasks import CeleryTaskSender, make_celery
from meterai_signing.worker_consumer import use_worker_consumer
from tests.support.brokers import dead_address, private_vhost

PROBE_TASK = "meterai.test.probe"
DELAYED_DELIVERY_PAUSES_S = 1 + 3 + 5
BOUND_S = 6.0


def _worker(url: str, done: str, with_our_consumer: bool) -> None:
    app = make_celery(url)
    if with_our_consumer:
        use_worker_consumer(app)

    @app.task(name=PROBE_TASK)
    def probe() -> None:
        Path(done).write_text(str(time.time()))

    app.worker_main(
        [
            "worker",
            "--loglevel=WARNING",
            f"--queues={SIGNING_QUEUE}",
            "--concurrency=1",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def _seconds_until_a_task_runs(url: str, tmp_path: Path, with_our_consumer: bool) -> float:
    done = tmp_path / f"done-{with_our_consumer}"
    spawn = multiprocessing.get_context("spawn")
    worker: Any = spawn.Process(target=_worker, args=(url, str(done), with_our_consumer))
    started = time.monotonic()
    worker.start()
    try:
        CeleryTaskSender(make_celery(url.split(";")[-1])).send(PROBE_TASK, {})
        while not done.exists() and time.monotonic() - started < 60:
            time.sleep(0.05)
        return time.monotonic() - started
    finally:
        worker.kill()
        worker.join(10)


def _node_down_first(tmp_path: Path, with_our_consumer: bool) -> float:
    with private_vhost() as live:
        connection = pika.BlockingConnection(pika.URLParameters(live))
        try:
            declare_topology(connection.channel())
        finally:
            connection.close()
        url = f"{dead_address(live)};{live}"
        return _seconds_until_a_task_runs(url, tmp_path, with_our_consumer)


def test_a_worker_whose_first_node_is_down_runs_a_task_within_seconds(tmp_path: Path) -> None:
    waited = _node_down_first(tmp_path, with_our_consumer=True)
    print(f"the task ran {waited:.1f} s after the worker started")
    assert waited < BOUND_S < DELAYED_DELIVERY_PAUSES_S, waited


def test_control_with_celerys_own_consumer_the_worker_waits_out_the_pauses(
    tmp_path: Path,
) -> None:
    """Control run, proving the step the test above removes is what costs the time: with
    Celery's own consumer the same worker runs the task only after the pauses. (Should a
    Celery release drop the step, this fails, and ``worker_consumer.py`` can go.)"""
    waited = _node_down_first(tmp_path, with_our_consumer=False)
    print(f"the task ran {waited:.1f} s after the worker started")
    assert waited >= DELAYED_DELIVERY_PAUSES_S, waited
