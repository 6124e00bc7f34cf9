"""ASGI lifespan, for servers that speak it (uvicorn; daphne does not, see daphne.py).

On SIGTERM uvicorn would stop listening and close every WebSocket with 1012 ("service
restart") before the application hears of it. The contract is the drain's: clients closed
with 1001 and deregistered in batches, within DRAIN_SECONDS. So SIGTERM drains first, then
goes on to uvicorn's own handler, which finds no connection left to close.
"""

import asyncio
import signal
import threading

from realtime.server.runtime import runtime
from realtime.server.shutdown import drain

__all__ = ["lifespan"]

_drains: set[asyncio.Task] = set()  # referenced until done, as asyncio asks


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _drain_first_on(signal.SIGTERM)
            runtime().start()  # the fleet heartbeat, before the first connection
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if not runtime().is_draining():  # stopped some other way (SIGINT)
                await drain()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _drain_first_on(signum: int) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set signal handlers
    server_handler = signal.getsignal(signum)
    if not callable(server_handler):
        return  # the server does not handle it: nothing to hand over to
    loop = asyncio.get_running_loop()

    def hand_over(_: asyncio.Task) -> None:
        _drains.clear()
        server_handler(signum, None)

    def start_drain() -> None:
        task = loop.create_task(drain())
        _drains.add(task)
        task.add_done_callback(hand_over)

    def on_signal(received: int, frame) -> None:
        signal.signal(signum, server_handler)  # a second signal goes to the server at once
        loop.call_soon_threadsafe(start_drain)

    signal.signal(signum, on_signal)
