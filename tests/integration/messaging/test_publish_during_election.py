"""A publisher whose first publish meets a quorum queue's leader election publishes again
within seconds, not never.

On RabbitMQ 3.10 a channel that publishes to a quorum queue while the queue's leader is being
re-elected (its node was lost) is nacked, and then nacked again on every later publish, while a
new channel on the same node publishes at once. A publisher that kept its channel after a nack
stalled the outbox, and every stamp behind the refused row, until something else ended the
connection: the CPNS-day rehearsal once lost two minutes to it. The publishers therefore take a
nack as the end of their channel (pika's: :class:`meterai_common.messaging.PikaPublisher`;
Celery's: kombu counts a nack among its recoverable connection errors).

The cluster is this module's own (``tests/support/rabbit_cluster.py``): the node holding every
leader is SIGKILLed and both publishers connect to a survivor in the same instant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meterai_common.messaging import PikaPublisher, ensure_topology_at
from meterai_common.tasks import SIGN_DIGESTS_TASK, CeleryTaskSender, make_celery
from tests.support.rabbit_cluster import RabbitCluster, rabbit_cluster

RESUME_BOUND_S = 5.0
"""An election takes well under a second here; a publisher stuck on a nacking channel never
resumes."""


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    with rabbit_cluster(Path(tmp_path_factory.mktemp("election"))) as cluster:
        # Declared through the first node, so every quorum queue's leader starts there.
        ensure_topology_at(cluster.url_of(cluster.nodes[0]))
        yield cluster


def _first_successes(
    attempts: dict[str, Callable[[], None]], bound_s: float
) -> dict[str, tuple[float | None, int]]:
    """Try every attempt in turn until each has once returned: the seconds until it did
    (``None`` if not within ``bound_s``) and how many times it was refused before."""
    started = time.monotonic()
    results: dict[str, tuple[float | None, int]] = {name: (None, 0) for name in attempts}
    pending = dict(attempts)
    while pending and time.monotonic() - started < bound_s:
        for name, attempt in list(pending.items()):
            try:
                attempt()
            except Exception:  # PublishError (pika), OperationalError (kombu)
                results[name] = (None, results[name][1] + 1)
                continue
            results[name] = (time.monotonic() - started, results[name][1])
            del pending[name]
        time.sleep(0.2)
    return results


def test_publishers_that_meet_the_election_publish_again_within_seconds(
    broker: RabbitCluster,
) -> None:
    leaders = {queue["leader"] for queue in broker.quorum_queues().values()}
    victim, survivor = broker.nodes[0], broker.nodes[1]
    assert leaders == {victim.name}

    broker.kill(victim)
    events = PikaPublisher(broker.url_of(survivor))
    app = make_celery(broker.url_of(survivor))
    app.conf.broker_connection_timeout = 5
    tasks = CeleryTaskSender(app)
    try:
        results = _first_successes(
            {
                "event": lambda: events.publish(
                    "DigestSigned", b"answer", message_id="election-event"
                ),
                "task": lambda: tasks.send(SIGN_DIGESTS_TASK, {"items": []}),
            },
            RESUME_BOUND_S * 3,
        )
    finally:
        events.close()
        app.close()

    print(f"seconds after the kill until published, and refusals before: {results}")
    for name, (after, refused) in results.items():
        assert after is not None and after < RESUME_BOUND_S, (name, after, refused)
    assert victim.name not in {queue["leader"] for queue in broker.quorum_queues().values()}
