"""A TCP proxy between AMQP clients and RabbitMQ that can lose one publisher confirm on purpose.

(Or withhold one, :meth:`AmqpProxy.withhold_next_confirm`: the connection stays up and the
confirm simply never arrives.)

The proxy forwards bytes both ways unchanged and reads the AMQP 0-9-1 frames as they pass
(frame: type, channel, size, payload, ``0xCE``). Armed with :meth:`AmqpProxy.lose_next_confirm`,
it waits for the broker's next ``basic.ack`` (class 60, method 80: the confirm of a publish,
sent only after the broker has taken the message) and, instead of forwarding it, cuts that
client's connection, both sockets at once. The client thus sees its connection drop with the
publish unconfirmed although the broker holds the message: the case a publisher must answer
by publishing again, and every consumer by taking the second copy as a duplicate.

It also records the body of every message published through it (``basic.publish`` followed by
its content header and body frames), so a test can see that the message whose confirm was lost
was published again, on a new connection.

A client's own ``basic.ack`` (a consumer acknowledging a delivery) travels the other way and is
never touched. One thread per direction per connection: a handful of connections, test only.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

__all__ = ["AmqpProxy", "LostConfirm"]

_FRAME_METHOD, _FRAME_HEADER, _FRAME_BODY = 1, 2, 3
_BASIC, _BASIC_PUBLISH, _BASIC_ACK = 60, 40, 80
_PROTOCOL_HEADER = 8
"""``AMQP\\x00\\x00\\x09\\x01``: what a client sends before its first frame."""


@dataclass(frozen=True)
class LostConfirm:
    """A confirm the proxy swallowed, and what was published on that channel before it."""

    connection: int
    """Index of the cut connection, in the order the proxy accepted connections."""
    delivery_tag: int
    body: bytes
    """The last message published on the confirmed channel: the one whose confirm was lost
    (a publisher that waits for each confirm has exactly one outstanding)."""


@dataclass
class _Published:
    connection: int
    body: bytes


@dataclass
class _Channel:
    body: bytearray = field(default_factory=bytearray)
    remaining: int = -1
    """Body bytes still expected for the message being published; -1: none in progress."""
    last: bytes = b""


@dataclass
class _Link:
    """One client connection and the broker connection the proxy opened for it."""

    index: int
    client: socket.socket
    server: socket.socket
    channels: dict[int, _Channel] = field(default_factory=dict)


class _Frames:
    """Splits a byte stream into AMQP frames, however the reads cut it."""

    def __init__(self, skip: int = 0) -> None:
        self._buffer = bytearray()
        self._skip = skip

    def feed(self, data: bytes) -> list[tuple[int, int, bytes, bytes]]:
        """``(type, channel, payload, raw frame)`` of each frame completed by ``data``."""
        self._buffer += data
        frames: list[tuple[int, int, bytes, bytes]] = []
        if self._skip:
            if len(self._buffer) < self._skip:
                return frames
            frames.append((0, 0, b"", bytes(self._buffer[: self._skip])))
            del self._buffer[: self._skip]
            self._skip = 0
        while len(self._buffer) >= 7:
            kind, channel, size = struct.unpack_from(">BHI", self._buffer)
            end = 7 + size + 1
            if len(self._buffer) < end:
                break
            raw = bytes(self._buffer[:end])
            frames.append((kind, channel, raw[7 : 7 + size], raw))
            del self._buffer[:end]
        return frames


class AmqpProxy:
    """Listens on 127.0.0.1 (a free port) and forwards every connection to ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._armed = False
        self._connections = 0
        self._open: list[tuple[socket.socket, socket.socket]] = []
        self.lost: list[LostConfirm] = []
        self._withholding = False
        self.withheld: list[LostConfirm] = []
        self.published: list[_Published] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="amqp-proxy", daemon=True).start()

    def url(self, amqp_url: str) -> str:
        """``amqp_url`` with its host and port replaced by the proxy's."""
        scheme, rest = amqp_url.split("://", 1)
        credentials, _, location = rest.rpartition("@")
        path = location.split("/", 1)[1] if "/" in location else ""
        prefix = f"{credentials}@" if credentials else ""
        return f"{scheme}://{prefix}127.0.0.1:{self.port}/{path}"

    def lose_next_confirm(self) -> None:
        """Cut the connection that receives the broker's next publisher confirm, instead of
        delivering the confirm (once; the proxy forwards everything afterwards)."""
        with self._lock:
            self._armed = True

    def withhold_next_confirm(self) -> None:
        """Drop the broker's next publisher confirm and keep the connection up, heartbeats
        and all (once): the confirm that never comes, which only the publisher's own bound
        ends."""
        with self._lock:
            self._withholding = True

    def published_after(self, lost: LostConfirm) -> list[bytes]:
        """Bodies published on connections opened after the one ``lost`` was cut on."""
        with self._lock:
            return [p.body for p in self.published if p.connection > lost.connection]

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for pair in self._open:
                _close(*pair)

    # -- forwarding ----------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                index = self._connections
                self._connections += 1
                self._open.append((client, server))
            link = _Link(index, client, server)
            for pump in (self._pump_to_broker, self._pump_to_client):
                threading.Thread(target=pump, args=(link,), daemon=True).start()

    def _pump_to_broker(self, link: _Link) -> None:
        frames = _Frames(skip=_PROTOCOL_HEADER)
        while data := _receive(link.client):
            for kind, number, payload, _raw in frames.feed(data):
                channel = link.channels.setdefault(number, _Channel())
                self._note_publish(link.index, channel, kind, payload)
            if not _send(link.server, data):
                break
        _close(link.client, link.server)

    def _note_publish(self, index: int, channel: _Channel, kind: int, payload: bytes) -> None:
        if kind == _FRAME_METHOD and struct.unpack_from(">HH", payload) == (
            _BASIC,
            _BASIC_PUBLISH,
        ):
            channel.body, channel.remaining = bytearray(), -1
        elif kind == _FRAME_HEADER and len(payload) >= 12:
            channel.remaining = struct.unpack_from(">Q", payload, 4)[0]
        elif kind == _FRAME_BODY and channel.remaining > 0:
            channel.body += payload
            channel.remaining -= len(payload)
        else:
            return
        if channel.remaining == 0:
            channel.last = bytes(channel.body)
            channel.remaining = -1
            with self._lock:
                self.published.append(_Published(index, channel.last))

    def _pump_to_client(self, link: _Link) -> None:
        frames = _Frames()
        while data := _receive(link.server):
            if not self._forward_to_client(link, frames.feed(data)):
                break
        _close(link.client, link.server)

    def _forward_to_client(self, link: _Link, frames: list[tuple[int, int, bytes, bytes]]) -> bool:
        """Forward ``frames`` one by one; False once the connection is to be cut (a confirm
        swallowed, or the client gone)."""
        for kind, number, payload, raw in frames:
            if kind == _FRAME_METHOD and self._swallow(link, number, payload):
                return False
            if kind == _FRAME_METHOD and self._withhold(link, number, payload):
                continue
            if not _send(link.client, raw):
                return False
        return True

    def _withhold(self, link: _Link, number: int, payload: bytes) -> bool:
        if struct.unpack_from(">HH", payload) != (_BASIC, _BASIC_ACK):
            return False
        with self._lock:
            if not self._withholding:
                return False
            self._withholding = False
            tag = struct.unpack_from(">Q", payload, 4)[0]
            body = link.channels.get(number, _Channel()).last
            self.withheld.append(LostConfirm(link.index, tag, body))
        return True

    def _swallow(self, link: _Link, number: int, payload: bytes) -> bool:
        if struct.unpack_from(">HH", payload) != (_BASIC, _BASIC_ACK):
            return False
        with self._lock:
            if not self._armed:
                return False
            self._armed = False
            tag = struct.unpack_from(">Q", payload, 4)[0]
            body = link.channels.get(number, _Channel()).last
            self.lost.append(LostConfirm(link.index, tag, body))
        return True


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
