"""ASGI lifespan, for servers that speak it (uvicorn; daphne does not, see daphne_compat).

On SIGTERM uvicorn stops listening, closes every WebSocket (with 1012, "service restart"),
waits for the consumers to finish (each deregisters; concurrent deletions are batched), then
sends `lifespan.shutdown`: the drain then marks the instance draining and deregisters any
connection still held, within DRAIN_SECONDS.
"""

from .drain import drain

__all__ = ["lifespan"]


async def lifespan(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await drain()
            await send({"type": "lifespan.shutdown.complete"})
            return
