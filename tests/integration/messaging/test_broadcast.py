"""Announcements reach every process: two broadcast consumers on the real broker (two
stamping processes) each get their own copy of a "job ended" event, and a work queue bound to
the same exchange is not robbed of anything."""

from __future__ import annotations

import threading
import uuid

from meterai.events.v1 import events_pb2
from meterai_common.broadcast import BroadcastConsumer
from meterai_common.messaging import PikaPublisher
from meterai_stamping.job_updates import ENDED_EVENTS, JobUpdates


def test_every_subscriber_hears_each_announcement(amqp_url: str) -> None:
    hubs = [JobUpdates(), JobUpdates()]
    consumers = [BroadcastConsumer(amqp_url, ENDED_EVENTS, hub.handle) for hub in hubs]
    for consumer in consumers:
        consumer.start()
    publisher = PikaPublisher(amqp_url)
    try:
        for consumer in consumers:
            assert consumer.connected.wait(10)
        marks = [hub.mark() for hub in hubs]
        job_id = str(uuid.uuid4())
        event = events_pb2.DocumentStamped(job_id=job_id, serial="S" * 22)
        publisher.publish("DocumentStamped", event.SerializeToString(), message_id=job_id)
        heard = [False, False]

        def wait(index: int) -> None:
            heard[index] = hubs[index].wait(job_id, marks[index], 10)

        waiters = [threading.Thread(target=wait, args=(i,)) for i in range(2)]
        for waiter in waiters:
            waiter.start()
        for waiter in waiters:
            waiter.join(15)
        assert heard == [True, True]
    finally:
        publisher.close()
        for consumer in consumers:
            consumer.stop()
