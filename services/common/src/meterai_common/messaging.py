"""RabbitMQ through pika: the only module that imports pika.

Domain events ("DigestSigned", "DocumentStamped", ...) travel on the durable topic exchange
``meterai.events`` with the protobuf message name as routing key. Guarantees (the README
lists them with the tests that hold us to them):

* publish: persistent messages, ``mandatory`` and publisher confirms, so a publish returns only
  once the broker has taken responsibility (an unroutable or refused message raises);
* queues: quorum, with a delivery limit and at-least-once dead-lettering, so a poison message
  ends in ``meterai.dead-letters`` instead of looping;
* consume: ack only after the handler committed its effect; handlers deduplicate, because a
  message may be delivered again after a crash between commit and ack;
* connections: heartbeats and a blocked-connection timeout (a publisher never hangs forever on
  a memory alarm), and reconnect with backoff after a broker restart.

pika connections are not thread-safe: each publisher and consumer owns its own connection.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

__all__ = [
    "ANNOUNCEMENT_MAX_LENGTH",
    "ANNOUNCEMENT_QUEUES",
    "CONFIRM_TIMEOUT_S",
    "DEAD_LETTERS",
    "DEAD_LETTERS_QUEUE",
    "DEAD_LETTER_EXCHANGE",
    "EVENTS_EXCHANGE",
    "QUEUES",
    "SIGNING_QUEUE",
    "STAMPING_EVENTS",
    "WEBHOOK_EVENTS",
    "ConfirmTimeout",
    "Handler",
    "PikaConsumer",
    "PikaPublisher",
    "PublishError",
    "QueueDepth",
    "QueueSpec",
    "TopologyMissing",
    "Unroutable",
    "announcement_arguments",
    "broker_addresses",
    "consume_until_stopped",
    "declare_topology",
    "earlier_deliveries",
    "ensure_topology",
    "ensure_topology_at",
    "queue_depths",
    "quorum_arguments",
    "topology_definitions",
    "wait_for_topology",
]

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = "meterai.events"
DEAD_LETTER_EXCHANGE = "meterai.dlx"
DEAD_LETTERS_QUEUE = "meterai.dead-letters"
SIGNING_QUEUE = "signing"
"""The Celery queue signing workers consume; declared with the same arguments by Celery."""

DELIVERY_LIMIT = 5
HEARTBEAT_S = 30
BLOCKED_CONNECTION_TIMEOUT_S = 30
CONFIRM_TIMEOUT_S = 30.0
"""Longest a publish waits for the broker's confirm before it gives the connection up and
publishes again on a new one. A quorum queue holds confirms while it elects a leader (up to
25 s seen on a loaded host); past that, a confirm that has not come is taken as a path that
will not deliver it (a node half gone, a connection whose peer stopped answering), and the
publisher must not wait on it with the outbox's rows locked behind it. Publishing again may
deliver a message twice, which every consumer takes once."""

Handler = Callable[[str, bytes, str], None]
"""``handler(routing_key, body, message_id)``; raising means "not done, deliver again"."""

_EARLIER_DELIVERIES: contextvars.ContextVar[int] = contextvars.ContextVar(
    "meterai_earlier_deliveries", default=0
)


def earlier_deliveries() -> int:
    """How many times the broker delivered the message being handled before this delivery
    (0 the first time; RabbitMQ's ``x-delivery-count``, or 1 for a message only flagged
    ``redelivered``), for a handler that must handle a message delivered again differently: a
    batch whose processing failed or killed its consumer is handled piece by piece.
    Outside a handler, or for a bus that never redelivers, 0."""
    return _EARLIER_DELIVERIES.get()


def _earlier_deliveries_of(method: Any, properties: Any) -> int:
    count = (properties.headers or {}).get("x-delivery-count")
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        return count
    return 1 if method.redelivered else 0


class PublishError(RuntimeError):
    """The broker did not confirm a message; the caller must keep it and try again."""


class Unroutable(PublishError):
    """No queue is bound for this routing key (a broker whose definitions predate it)."""


@dataclass(frozen=True)
class QueueSpec:
    name: str
    routing_keys: tuple[str, ...]


STAMPING_EVENTS = QueueSpec("stamping.events", ("DigestSigned", "SigningFailed", "SigningAnswers"))
"""What the stamping service consumes: the signing tier's answers, one per message or a
batch's in one ``SigningAnswers``."""

QUEUES: tuple[QueueSpec, ...] = (STAMPING_EVENTS,)

WEBHOOK_EVENTS = QueueSpec("webhooks.events", ("DocumentStamped", "StampFailed"))
"""The webhook dispatcher's copy of the "job ended" announcements (``meterai worker webhooks``)."""

ANNOUNCEMENT_QUEUES: tuple[QueueSpec, ...] = (WEBHOOK_EVENTS,)
"""Durable queues of announcement readers: declared with the topology like :data:`QUEUES`, but
their keys are not published ``mandatory``, and they are bounded (:func:`announcement_arguments`),
so a reader that is missing or behind never makes a publisher (the stamping outbox) wait."""

ANNOUNCEMENT_MAX_LENGTH = 1_000_000
"""Events an announcement queue keeps for a reader that is down or behind (about 100 MB of
``DocumentStamped``; a day of a quiet platform, an hour of a busy one): every stamp announces
itself whether or not anyone reads it, so an unbounded queue with no reader grows until the
broker's disk alarm stops every publisher, the signing path included."""

DEAD_LETTERS = QueueSpec(DEAD_LETTERS_QUEUE, ())
"""Everything the broker gave up delivering (bound to the dead-letter exchange with ``#``)."""

_ROUTED = frozenset(key for spec in QUEUES for key in spec.routing_keys)
"""Events some service depends on: published ``mandatory`` so a missing queue is an error,
not a silent loss. Other events (``DocumentStamped``, ``QuotaCredited``) are announcements
for whoever subscribes, and may have no subscriber yet."""


def quorum_arguments() -> dict[str, Any]:
    """Arguments of every work queue: quorum, bounded redelivery, safe dead-lettering."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def announcement_arguments(max_length: int = ANNOUNCEMENT_MAX_LENGTH) -> dict[str, Any]:
    """Arguments of an announcement queue: quorum and bounded redelivery like a work queue, but
    full means the OLDEST event is dropped (``drop-head``), never that the publisher is refused
    (``reject-publish`` would stall the outbox, and every stamp behind it, on a reader's
    absence). No dead-lettering: a dropped or poison announcement is no job's fate (the job is
    finished; a webhook receiver reconciles with ``ListJobs``)."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-max-length": max_length,
        "x-overflow": "drop-head",
    }


def _arguments_of(spec: QueueSpec) -> dict[str, Any]:
    return announcement_arguments() if spec in ANNOUNCEMENT_QUEUES else quorum_arguments()


class TopologyMissing(ConnectionError):
    """The broker lacks the platform's exchanges or queues and this user may not create them.

    A connection error, so consumers and publishers keep retrying (and saying why) until the
    operator imports the definitions; nothing is lost meanwhile, the outbox keeps its rows.
    """


def declare_topology(channel: Any) -> None:
    """Declare exchanges, queues and bindings (idempotent); needs the *configure* permission,
    which only the operator's broker user holds in a deployment with per-service users."""
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(SIGNING_QUEUE, exchange_type="direct", durable=True)
    channel.queue_declare(DEAD_LETTERS_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(DEAD_LETTERS_QUEUE, DEAD_LETTER_EXCHANGE, routing_key="#")
    channel.queue_declare(SIGNING_QUEUE, durable=True, arguments=quorum_arguments())
    channel.queue_bind(SIGNING_QUEUE, SIGNING_QUEUE, routing_key=SIGNING_QUEUE)
    for spec in (*QUEUES, *ANNOUNCEMENT_QUEUES):
        channel.queue_declare(spec.name, durable=True, arguments=_arguments_of(spec))
        for key in spec.routing_keys:
            channel.queue_bind(spec.name, EVENTS_EXCHANGE, routing_key=key)


def ensure_topology(connection: Any) -> Any:
    """Return an open channel on a broker that has the platform's topology.

    Every process runs this at connect. It first checks, passively (no permission needed),
    that every exchange and queue exists; only when one is missing does it declare them all,
    which works for the operator's user and for an all-powerful development user, and fails
    with :class:`TopologyMissing` (naming the fix) for a least-privilege service user.
    """
    channel = connection.channel()
    try:
        for exchange in (EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE, SIGNING_QUEUE):
            channel.exchange_declare(exchange, passive=True)
        for queue in (
            DEAD_LETTERS_QUEUE,
            SIGNING_QUEUE,
            *(spec.name for spec in (*QUEUES, *ANNOUNCEMENT_QUEUES)),
        ):
            channel.queue_declare(queue, passive=True)
        return channel
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code != 404:
            raise
        missing = error.reply_text
    channel = connection.channel()
    try:
        declare_topology(channel)
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code != 403:
            raise
        raise TopologyMissing(
            f"the broker lacks the platform's topology ({missing}) and this user may not "
            "declare it: import deploy/rabbitmq/definitions.json into the broker, or run "
            "`meterai admin topology --apply` with the operator's AMQP_URL"
        ) from error
    return channel


def ensure_topology_at(url: str) -> None:
    """:func:`ensure_topology` on a connection of its own (before Celery sends or consumes)."""
    connection = pika.BlockingConnection(_parameters(url))
    try:
        ensure_topology(connection)
    finally:
        connection.close()


def wait_for_topology(url: str, patience_s: float = 600.0) -> None:
    """Retry :func:`ensure_topology_at` with backoff while the broker is down or lacks the
    topology, saying why each time; give up with SystemExit after ``patience_s``."""
    deadline = time.monotonic() + patience_s
    backoff = 0.5
    while True:
        try:
            ensure_topology_at(url)
            return
        except _CONNECTION_ERRORS as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"the broker is not usable: {error}") from None
            log.warning("waiting for the broker (%s); retrying in %.1f s", error, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


def topology_definitions(vhost: str = "/") -> dict[str, Any]:
    """The topology as a RabbitMQ definitions document (``deploy/rabbitmq/definitions.json``)."""
    queues = [
        {"name": DEAD_LETTERS_QUEUE, "arguments": {"x-queue-type": "quorum"}},
        {"name": SIGNING_QUEUE, "arguments": quorum_arguments()},
        *(
            {"name": spec.name, "arguments": _arguments_of(spec)}
            for spec in (*QUEUES, *ANNOUNCEMENT_QUEUES)
        ),
    ]
    bindings = [
        {"source": DEAD_LETTER_EXCHANGE, "destination": DEAD_LETTERS_QUEUE, "routing_key": "#"},
        {"source": SIGNING_QUEUE, "destination": SIGNING_QUEUE, "routing_key": SIGNING_QUEUE},
        *(
            {"source": EVENTS_EXCHANGE, "destination": spec.name, "routing_key": key}
            for spec in (*QUEUES, *ANNOUNCEMENT_QUEUES)
            for key in spec.routing_keys
        ),
    ]
    return {
        "exchanges": [
            {
                "name": name,
                "vhost": vhost,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name in (EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE)
        ]
        + [
            {
                "name": SIGNING_QUEUE,
                "vhost": vhost,
                "type": "direct",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "queues": [
            {"vhost": vhost, "durable": True, "auto_delete": False, **queue} for queue in queues
        ],
        "bindings": [
            {"vhost": vhost, "destination_type": "queue", "arguments": {}, **binding}
            for binding in bindings
        ],
    }


def broker_addresses(url: str) -> list[str]:
    """The addresses of an ``AMQP_URL``: one URL, or several separated by ``;`` (the nodes
    of a cluster), which is also how Celery/kombu reads a broker URL with failover."""
    addresses = [part.strip() for part in url.split(";") if part.strip()]
    if not addresses:
        raise ValueError("AMQP_URL names no broker address")
    return addresses


def _parameters(url: str) -> list[pika.URLParameters]:
    """Connection parameters for every address of ``url``, in random order.

    pika tries them in turn, once each (``connection_attempts``), so a client whose node is
    gone connects to the next one; shuffling spreads clients over the nodes of a cluster
    (pika's documentation recommends it for exactly this) instead of piling them on the first.
    """
    candidates = []
    for address in broker_addresses(url):
        parameters = pika.URLParameters(address)
        parameters.heartbeat = HEARTBEAT_S
        parameters.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT_S
        parameters.connection_attempts = 1
        parameters.socket_timeout = 5
        candidates.append(parameters)
    random.shuffle(candidates)
    return candidates


_CONNECTION_ERRORS = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
    OSError,
)


@dataclass(frozen=True)
class QueueDepth:
    name: str
    messages: int
    """Ready messages (not yet delivered to a consumer)."""
    consumers: int


def queue_depths(url: str, names: tuple[str, ...]) -> list[QueueDepth]:
    """Depth and consumer count of each queue, by passive declaration (creates nothing)."""
    connection = pika.BlockingConnection(_parameters(url))
    try:
        depths = []
        for name in names:
            channel = connection.channel()
            try:
                ok = channel.queue_declare(name, passive=True).method
                depths.append(QueueDepth(name, ok.message_count, ok.consumer_count))
            except pika.exceptions.ChannelClosedByBroker:
                depths.append(QueueDepth(name, -1, 0))
        return depths
    finally:
        connection.close()


class ConfirmTimeout(pika.exceptions.AMQPConnectionError):
    """The broker did not confirm a publish within the bound; the connection is given up."""


class PikaPublisher:
    """Publishes domain events with confirms; safe to share between threads (it serialises).

    :param confirm_timeout_s: a publish whose confirm has not come by then abandons its
        connection (:class:`ConfirmTimeout`) and is made once more on a new one.
    """

    def __init__(self, url: str, confirm_timeout_s: float = CONFIRM_TIMEOUT_S) -> None:
        self._url = url
        self._confirm_timeout_s = confirm_timeout_s
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None

    def _ensure_channel(self) -> Any:
        if self._connection is None or not self._connection.is_open:
            self._connection = pika.BlockingConnection(_parameters(self._url))
            self._channel = ensure_topology(self._connection)
            self._channel.confirm_delivery()
        return self._channel

    def _reset(self) -> None:
        try:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        except Exception:  # closing a broken connection may fail again; it is gone either way
            pass
        self._connection = None
        self._channel = None

    def publish(self, routing_key: str, body: bytes, *, message_id: str) -> None:
        """Publish persistently and wait for the broker's confirm; raise PublishError if refused."""
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=message_id,
            type=routing_key,
            content_type="application/x-protobuf",
        )
        with self._lock:
            for attempt in (1, 2):
                try:
                    channel = self._ensure_channel()
                    with self._confirm_deadline():
                        channel.basic_publish(
                            EVENTS_EXCHANGE,
                            routing_key,
                            body,
                            properties=properties,
                            mandatory=routing_key in _ROUTED,
                        )
                    return
                except pika.exceptions.UnroutableError as error:
                    raise Unroutable(f"no queue takes {routing_key}: {error}") from error
                except pika.exceptions.NackError as error:
                    # A nack can be the channel's state, not the message's: a channel that
                    # first publishes to a quorum queue while its leader is being re-elected
                    # (a broker node lost) keeps nacking every later publish, while a new
                    # channel on the same node publishes at once. So a nacked publish is made
                    # once more on a new connection, and the next call starts afresh.
                    self._reset()
                    if attempt == 2:
                        raise PublishError(f"broker refused {routing_key}: {error}") from error
                except _CONNECTION_ERRORS as error:
                    self._reset()
                    if attempt == 2:
                        raise PublishError(f"broker unreachable: {error!r}") from error

    @contextmanager
    def _confirm_deadline(self) -> Iterator[None]:
        """Bound the wait for a confirm: pika's blocking publish waits for it without limit.

        The timer runs on the connection's own I/O loop, which the blocking publish drives
        while it waits, and ends the connection the way pika's heartbeat checker ends one
        whose peer went silent, so the publish raises a connection error."""
        impl = self._connection._impl  # type: ignore[union-attr]
        limit = self._confirm_timeout_s

        def give_up() -> None:
            log.warning("no confirm from the broker within %.0f s; reconnecting", limit)
            impl._terminate_stream(ConfirmTimeout(f"no publisher confirm within {limit:g} s"))

        timer = impl.ioloop.call_later(limit, give_up)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # the loop may be gone with the connection
                impl.ioloop.remove_timeout(timer)

    def close(self) -> None:
        with self._lock:
            self._reset()


def consume_until_stopped(
    name: str, consume: Callable[[], None], stopping: threading.Event, connected: threading.Event
) -> None:
    """Run ``consume`` (one connection's consuming loop) again whenever its connection is
    lost, backing off from 0.5 s to 10 s between attempts, until ``stopping`` is set;
    ``connected`` is cleared while there is no connection."""
    backoff = 0.5
    while not stopping.is_set():
        try:
            consume()
            backoff = 0.5
        except _CONNECTION_ERRORS as error:
            connected.clear()
            log.warning("%s: connection lost (%r); reconnecting", name, error)
            stopping.wait(backoff)
            backoff = min(backoff * 2, 10.0)


class PikaConsumer:
    """Consumes one queue on its own thread and connection, acking after the handler returns.

    A handler that raises gets the message redelivered (``basic_nack`` with requeue); the
    quorum queue's delivery limit dead-letters it after repeated failures. A failure that says
    nothing about the message — its database is briefly unreachable (``transient``) — is
    retried in place with backoff instead, while heartbeats continue: redelivering would spend
    the delivery limit in a second and dead-letter a perfectly good message.
    """

    def __init__(
        self,
        url: str,
        spec: QueueSpec,
        handler: Handler,
        *,
        prefetch: int = 10,
        transient: Callable[[Exception], bool] = lambda error: False,
        transient_patience_s: float = 600.0,
    ) -> None:
        self._url = url
        self._spec = spec
        self._handler = handler
        self._prefetch = prefetch
        self._transient = transient
        self._patience_s = transient_patience_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"consume-{spec.name}", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the message in hand, then close; unacked prefetched messages go back."""
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        consume_until_stopped(self._spec.name, self._consume, self._stopping, self.connected)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(_parameters(self._url))
        try:
            channel = ensure_topology(connection)
            channel.basic_qos(prefetch_count=self._prefetch)
            self.connected.set()
            for method, properties, body in channel.consume(
                self._spec.name, inactivity_timeout=0.25
            ):
                if self._stopping.is_set():
                    break
                if method is None:
                    continue
                message_id = properties.message_id or ""
                token = _EARLIER_DELIVERIES.set(_earlier_deliveries_of(method, properties))
                try:
                    handled = self._handle(connection, method.routing_key, body, message_id)
                finally:
                    _EARLIER_DELIVERIES.reset(token)
                if handled:
                    channel.basic_ack(method.delivery_tag)
                else:
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    connection.sleep(0.1)
            channel.cancel()
        finally:
            if connection.is_open:
                connection.close()

    def _handle(self, connection: Any, routing_key: str, body: bytes, message_id: str) -> bool:
        """Run the handler; True when the message is done with, False to have it redelivered."""
        deadline = time.monotonic() + self._patience_s
        backoff = 0.2
        while True:
            try:
                self._handler(routing_key, body, message_id)
                return True
            except Exception as error:
                if self._transient(error) and time.monotonic() < deadline:
                    if self._stopping.is_set():
                        return False
                    log.warning(
                        "%s: %s waits for a dependency (%s); retrying in %.1f s",
                        self._spec.name,
                        message_id,
                        error,
                        backoff,
                    )
                    connection.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                log.exception("%s: handler failed for %s", self._spec.name, message_id)
                return False
