"""WebSocket routing: the one endpoint, `/`, without URLRouter's per-connection layers.

URLRouter and `as_asgi` would add two coroutine frames and a copy of the scope to every open
connection, for a single route; at ten thousand connections that is memory worth keeping.
"""

from .consumers import ConnectionConsumer

__all__ = ["websocket_application"]


async def websocket_application(scope, receive, send) -> None:
    if scope["path"] not in ("/", ""):
        # Refused before the handshake completes: servers answer with HTTP 403.
        await send({"type": "websocket.close"})
        return
    await ConnectionConsumer()(scope, receive, send)
