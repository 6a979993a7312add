"""AMQP over TLS (``amqps://``): both broker clients, pika for events and Celery (py-amqp) for
sign tasks, connect through TLS and verify the broker's certificate.

The machine's RabbitMQ listens in plaintext only, so the test puts a TLS terminator in front of
it (a certificate issued by a CA of the test's own); a client trusting that CA publishes, a
client trusting another CA refuses the connection instead of sending credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.exceptions import OperationalError

from meterai_common.messaging import PikaPublisher, PublishError, ensure_topology_at
from meterai_common.tasks import SIGN_DIGEST_TASK, CeleryTaskSender, make_celery
from meterai_common.tls import TlsFiles, ensure_platform_tls


class TlsTerminator:
    """Accepts TLS on a free port and relays the plaintext to the broker on 127.0.0.1:5672."""

    def __init__(self, certificate: Path, key: Path) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificate, key)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TlsTerminator:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self._context)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", 5672)
        except OSError:
            writer.close()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(Exception):
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


@pytest.fixture(scope="module")
def broker_ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_platform_tls(tmp_path_factory.mktemp("broker-tls"), ("127.0.0.1",))


@pytest.fixture(scope="module")
def terminator(broker_ca: TlsFiles) -> Iterator[TlsTerminator]:
    proxy = TlsTerminator(broker_ca.certificate("quota"), broker_ca.key("quota")).start()
    yield proxy
    proxy.stop()


def _amqps(amqp_url: str, port: int) -> str:
    return amqp_url.replace("amqp://", "amqps://").replace("127.0.0.1:5672", f"127.0.0.1:{port}")


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch, broker_ca: TlsFiles) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(broker_ca.ca_certificate))


@pytest.fixture
def trusting_another_ca(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = ensure_platform_tls(tmp_path / "other", ("127.0.0.1",))
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca_certificate))


@pytest.mark.usefixtures("trusting")
def test_events_are_published_over_tls(amqp_url: str, terminator: TlsTerminator) -> None:
    publisher = PikaPublisher(_amqps(amqp_url, terminator.port))
    try:
        publisher.publish("DocumentStamped", b"event", message_id="tls-1")
    finally:
        publisher.close()


@pytest.mark.usefixtures("trusting_another_ca")
def test_events_are_not_sent_to_a_broker_with_an_untrusted_certificate(
    amqp_url: str, terminator: TlsTerminator
) -> None:
    publisher = PikaPublisher(_amqps(amqp_url, terminator.port))
    try:
        with pytest.raises(PublishError, match="unreachable"):
            publisher.publish("DocumentStamped", b"event", message_id="tls-2")
    finally:
        publisher.close()


@pytest.mark.usefixtures("trusting")
def test_sign_tasks_are_sent_over_tls(amqp_url: str, terminator: TlsTerminator) -> None:
    url = _amqps(amqp_url, terminator.port)
    ensure_topology_at(url)
    app = make_celery(url)
    CeleryTaskSender(app).send(SIGN_DIGEST_TASK, {"job_id": "tls", "serial": "0", "digest": "0"})


@pytest.mark.usefixtures("trusting_another_ca")
def test_sign_tasks_are_not_sent_to_a_broker_with_an_untrusted_certificate(
    amqp_url: str, terminator: TlsTerminator
) -> None:
    app = make_celery(_amqps(amqp_url, terminator.port))
    app.conf.broker_connection_timeout = 5
    connection = app.connection_for_write()
    try:
        with pytest.raises(OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
            connection.ensure_connection(max_retries=1)
    finally:
        connection.release()
