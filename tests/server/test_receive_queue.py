"""ReceiveQueue, and the servers' use of it."""

import asyncio

import pytest

from realtime.server.adapters import daphne
from realtime.server.adapters.receive_queue import ReceiveQueue


def test_first_in_first_out():
    async def scenario():
        queue = ReceiveQueue()
        for n in range(3):
            queue.put_nowait(n)
        assert queue.qsize() == 3 and not queue.empty()
        assert [await queue.get() for _ in range(3)] == [0, 1, 2]
        assert queue.empty()

    asyncio.run(scenario())


def test_a_waiting_reader_wakes_on_put():
    async def scenario():
        queue = ReceiveQueue()
        reader = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        assert not reader.done()
        queue.put_nowait("x")
        assert await asyncio.wait_for(reader, 1) == "x"

    asyncio.run(scenario())


def test_a_cancelled_read_loses_nothing():
    async def scenario():
        queue = ReceiveQueue()
        reader = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        queue.put_nowait("kept")
        assert await asyncio.wait_for(queue.get(), 1) == "kept"

    asyncio.run(scenario())


def test_a_second_reader_is_refused_not_left_waiting_forever():
    async def scenario():
        queue = ReceiveQueue()
        first = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="one reader"):
            await queue.get()
        queue.put_nowait("x")
        assert await asyncio.wait_for(first, 1) == "x"

    asyncio.run(scenario())


class StandInDaphneServer:
    """What daphne's Server.create_application uses of its server."""

    def __init__(self):
        self.connections = {}
        self.scopes = []

    async def application(self, scope, receive, send):
        self.scopes.append(scope)
        return await receive()

    async def handle_reply(self, protocol, message):
        pass


@pytest.mark.parametrize(
    ("scope_type", "queue_type"), [("websocket", ReceiveQueue), ("http", asyncio.Queue)]
)
def test_daphne_gives_websocket_applications_a_receive_queue(scope_type, queue_type):
    async def scenario():
        server, protocol = StandInDaphneServer(), object()
        server.connections[protocol] = {}
        queue = daphne._create_application(server, protocol, {"type": scope_type})
        assert type(queue) is queue_type
        queue.put_nowait({"type": f"{scope_type}.disconnect"})
        application = server.connections[protocol]["application_instance"]
        assert await asyncio.wait_for(application, 1) == {"type": f"{scope_type}.disconnect"}
        assert server.scopes[0]["asgi"] == {"version": "3.0"}

    asyncio.run(scenario())
