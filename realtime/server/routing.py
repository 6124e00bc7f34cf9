"""Routing without per-connection layers: by scope type, then the one WebSocket path, `/`.

Channels' ProtocolTypeRouter and URLRouter are coroutines, so each stays on the stack of every
open connection: a frame per layer, and for URLRouter a copy of the scope. At ten thousand
connections that is memory worth keeping. These route with plain calls that return the chosen
application's coroutine, so an open connection carries only its consumer's frames.
"""

import inspect
from collections.abc import Callable, Mapping

from realtime.server.consumer import ConnectionConsumer

__all__ = ["protocol_router", "websocket_application"]


def protocol_router(applications: Mapping[str, Callable]) -> Callable:
    """An ASGI application that hands each scope to `applications[scope["type"]]`."""

    def application(scope, receive, send):
        try:
            chosen = applications[scope["type"]]
        except KeyError:
            raise ValueError(f"no application for ASGI scope type {scope['type']!r}") from None
        return chosen(scope, receive, send)

    # Servers tell an ASGI 3 application (one call per scope) by its being a coroutine function.
    return inspect.markcoroutinefunction(application)


@inspect.markcoroutinefunction
def websocket_application(scope, receive, send):
    if scope["path"] not in ("/", ""):
        return _refuse(send)
    return ConnectionConsumer()(scope, receive, send)


async def _refuse(send) -> None:
    # Refused before the handshake completes: servers answer with HTTP 403.
    await send({"type": "websocket.close"})
