"""realtime.uvicorn_protocol: uvicorn's protocol, with its own receive queue and flow control.

Driven in process through a recording transport, with websockets' own client protocol
producing the bytes a browser would send. The end-to-end tests (tests/e2e/test_uvicorn_e2e.py)
run uvicorn with this class over real sockets.
"""

import asyncio

from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.http11 import Response
from websockets.uri import parse_uri

from realtime.server.adapters.uvicorn import PAUSE_AT, WebSocketProtocol


class RecordingTransport:
    """What asyncio's socket transport offers a protocol, recording writes and read pauses."""

    def __init__(self):
        self.written = bytearray()
        self.reading = True
        self.pauses = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def take(self) -> bytes:
        data, self.written = bytes(self.written), bytearray()
        return data

    def pause_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default=None):
        return {"sockname": ("127.0.0.1", 8765), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )


class Session:
    """One WebSocket connection: the server protocol under test and a client speaking to it."""

    def __init__(self, app):
        config = Config(app=app, lifespan="off", log_level="warning")
        config.load()
        self.protocol = WebSocketProtocol(config=config, server_state=ServerState(), app_state={})
        self.transport = RecordingTransport()
        self.protocol.connection_made(self.transport)
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1:8765/"))
        self.client.send_request(self.client.connect())

    def flush_client(self) -> None:
        """Everything the client has to send, delivered in one read."""
        self.protocol.data_received(b"".join(self.client.data_to_send()))

    async def open(self) -> None:
        self.flush_client()
        await until(lambda: self.transport.written)
        self.client.receive_data(self.transport.take())
        [response] = self.client.events_received()
        assert isinstance(response, Response) and response.status_code == 101


async def until(condition, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0)


def reading_app(release: asyncio.Event, received: list[str]):
    """Accepts, waits for `release`, then reads messages until the disconnect."""

    async def app(scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await release.wait()
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])

    return app


def test_a_burst_pauses_reading_once_and_every_message_arrives_in_order():
    async def scenario():
        release, received = asyncio.Event(), []
        session = Session(reading_app(release, received))
        await session.open()
        count = 3 * PAUSE_AT
        for n in range(count):
            session.client.send_text(f"m{n}".encode())
        session.flush_client()  # one read carrying every message
        assert not session.transport.reading
        release.set()
        await until(lambda: len(received) == count)
        assert received == [f"m{n}" for n in range(count)]
        assert session.transport.reading  # resumed once the application caught up
        assert session.transport.pauses == 1

    asyncio.run(scenario())


def test_reading_goes_on_while_fewer_than_pause_at_messages_wait():
    async def scenario():
        release, received = asyncio.Event(), []
        session = Session(reading_app(release, received))
        await session.open()
        for n in range(PAUSE_AT - 1):
            session.client.send_text(f"m{n}".encode())
            session.flush_client()
        assert session.transport.reading and session.transport.pauses == 0
        release.set()
        await until(lambda: len(received) == PAUSE_AT - 1)
        session.client.send_text(b"last")
        session.flush_client()
        await until(lambda: len(received) == PAUSE_AT)
        assert received[-1] == "last" and session.transport.pauses == 0

    asyncio.run(scenario())


def test_the_handshake_response_is_let_go_once_sent():
    async def scenario():
        session = Session(reading_app(asyncio.Event(), []))
        await session.open()
        assert session.protocol.response is None

    asyncio.run(scenario())


def test_a_closed_connection_reaches_the_application_as_a_disconnect():
    async def scenario():
        release, received, ended = asyncio.Event(), [], asyncio.Event()
        app = reading_app(release, received)

        async def watched(scope, receive, send):
            await app(scope, receive, send)
            ended.set()

        session = Session(watched)
        await session.open()
        session.client.send_text(b"before")
        session.flush_client()
        session.protocol.connection_lost(None)
        release.set()
        await asyncio.wait_for(ended.wait(), 2)
        assert received == ["before"]

    asyncio.run(scenario())
