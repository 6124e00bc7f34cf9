"""The HTTP server speaking DynamoDB's JSON protocol on one asyncio loop, no thread per request.

`POST /` with `X-Amz-Target: DynamoDB_20120810.<Operation>` (SigV4 headers accepted and
ignored) goes to the service and is answered after the latency; `GET /stats` and
`POST /reset-stats` are answered at once.
"""

import asyncio
import contextlib
import json
import signal
from collections import deque

from bench.fake_dynamodb.errors import DynamoError
from bench.fake_dynamodb.service import FakeDynamoDB

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
_REASONS.update({100: "Continue", 411: "Length Required", 413: "Payload Too Large"})
_REASONS[501] = "Not Implemented"
_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024


def _header(head: bytes, lowered: bytes, name: bytes) -> bytes:
    """The value of header `name` (b"\\r\\nname:", lowercase) in a head ending in CRLF."""
    start = lowered.find(name)
    if start < 0:
        return b""
    start += len(name)
    return head[start : lowered.index(b"\r\n", start)].strip()


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection. Answers go out in request order: every DynamoDB
    answer is delayed by the same latency, so the k-th timer to fire sends the k-th answer."""

    def __init__(self, service: FakeDynamoDB, loop: asyncio.AbstractEventLoop, ids, live: set):
        self.service = service
        self.live = live
        self.loop = loop
        self.ids = ids
        self.transport = None
        self.buffer = bytearray()
        self.head = None  # (method, target, keep_alive, operation, length) awaiting its body
        self.queue: deque = deque()  # [response bytes, close after, delayed]
        self.closing = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.live.add(self)

    def connection_lost(self, exc) -> None:
        self.live.discard(self)
        self.transport = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        while not self.closing:
            request = self._next_request()
            if request is None:
                return
            self._answer(*request)

    def _next_request(self):
        buffer = self.buffer
        if self.head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    self._fail(413)
                return None
            # Four headers matter; find them in the lowered head rather than split every line.
            head = bytes(buffer[: end + 2])
            del buffer[: end + 4]
            line_end = head.find(b"\r\n")
            parts = head[:line_end].split(b" ")
            if len(parts) != 3:
                self._fail(400)
                return None
            method, target, version = parts
            lowered = head.lower()
            if b"\r\ntransfer-encoding:" in lowered:
                self._fail(501)  # boto3 always sends Content-Length
                return None
            try:
                length = int(_header(head, lowered, b"\r\ncontent-length:") or b"0")
            except ValueError:
                self._fail(400)
                return None
            if length > _MAX_BODY or length < 0:
                self._fail(413)
                return None
            connection = _header(lowered, lowered, b"\r\nconnection:")
            if version == b"HTTP/1.1":
                keep_alive = connection != b"close"
            else:
                keep_alive = connection == b"keep-alive"
            target_header = _header(head, lowered, b"\r\nx-amz-target:").decode("latin-1")
            expect = _header(lowered, lowered, b"\r\nexpect:")
            if expect == b"100-continue" and len(buffer) < length:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.head = (method, target, keep_alive, target_header, length)
        method, target, keep_alive, target_header, length = self.head
        if len(buffer) < length:
            return None
        body = bytes(buffer[:length])
        del buffer[:length]
        self.head = None
        return method, target, keep_alive, target_header, body

    def _answer(self, method, target, keep_alive, target_header, body) -> None:
        service = self.service
        close = not keep_alive
        if method == b"POST" and target_header:
            operation = target_header.rpartition(".")[2]
            if not target_header.startswith(TARGET_PREFIX):
                operation = target_header
            status, payload = service.handle(operation, body)
            self._send(status, payload, CONTENT_TYPE, close, delayed=service.latency > 0)
            return
        path = target.split(b"?", 1)[0]
        if method == b"GET" and path == b"/stats":
            payload = json.dumps(service.stats()).encode()
            self._send(200, payload, "application/json", close)
        elif method == b"POST" and path == b"/reset-stats":
            service.reset_stats()
            self._send(200, b'{"reset":true}', "application/json", close)
        elif method == b"POST" and path == b"/":
            error = DynamoError("UnknownOperationException", "No X-Amz-Target header")
            self._send(400, json.dumps(error.body()).encode(), CONTENT_TYPE, close)
        else:
            self._send(404, b'{"message":"not found"}', "application/json", close)

    def _send(self, status: int, payload: bytes, content_type: str, close: bool, *, delayed=False):
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
            f"x-amzn-RequestId: {next(self.ids)}\r\n"
            f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
        ).encode()
        if close:
            self.closing = True
        if delayed:
            self.queue.append((head + payload, close, True))
            self.loop.call_later(self.service.latency, self._release)
        elif self.queue:
            self.queue.append((head + payload, close, False))  # after the answers before it
        else:
            self._write(head + payload, close)

    def _release(self) -> None:
        """A delayed answer is due: send the oldest one and the undelayed ones behind it."""
        queue = self.queue
        if not queue:
            return  # the connection went away
        data, close, _ = queue.popleft()
        self._write(data, close)
        while queue and not queue[0][2]:
            data, close, _ = queue.popleft()
            self._write(data, close)

    def _write(self, data: bytes, close: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(data)
        if close:
            self.transport.close()
            self.transport = None
            self.queue.clear()

    def _fail(self, status: int) -> None:
        self.buffer.clear()
        self._send(status, b'{"message":"bad request"}', "application/json", True)


async def serve(host: str, port: int, latency_ms: float, ready=None) -> None:
    """Serve until SIGTERM or SIGINT; `ready(port)` is called once listening."""
    loop = asyncio.get_running_loop()
    service = FakeDynamoDB(latency=max(latency_ms, 0) / 1000)
    ids = (f"fake-{n:010d}" for n in range(1, 1 << 62))
    live: set[_Connection] = set()
    server = await loop.create_server(
        lambda: _Connection(service, loop, ids, live), host, port, backlog=2048
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    await stop.wait()
    server.close()
    # Clients keep idle keep-alive connections open; wait_closed would wait for them.
    for connection in list(live):
        if connection.transport is not None:
            connection.transport.abort()
