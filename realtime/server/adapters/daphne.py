"""Changes to daphne 4.2, applied under daphne only: two fixes that this server's contract
depends on, and a smaller queue per WebSocket connection.

1. Closes. Daphne closes through autobahn's public `sendClose`, which admits only 1000 and
   3000-4999 (the browser API's rule for clients) and turns 1001, 1008, 1009 or 1013 into an
   exception and a 1011 (django/daphne#374). RFC 6455 lets a server send the registered codes,
   so for those we call autobahn's frame-level `sendCloseFrame`, which is what `sendClose`
   does after its check. The close's reason reaches the frame (daphne drops it), a client's
   close reason is echoed back, and a closing handshake the client completed ends the TCP
   connection with a FIN, not autobahn's reset: browsers see a clean close.

2. Shutdown. On SIGTERM daphne cancels every application and waits for them, but its loop
   reads `details["application_instance"]` for every entry, and the HTTP protocol of a
   connection upgraded to a WebSocket in the last second has no such key: the KeyError aborts
   the whole shutdown hook, no consumer is cancelled, and every open connection would be left
   registered. The replacement skips those entries, and drains first (realtime/server/shutdown.py):
   clients are closed with 1001 and deregistered in batches within DRAIN_SECONDS.

3. Memory. daphne hands each application its events through an `asyncio.Queue`, about 3 KiB
   per connection; WebSocket connections get a ReceiveQueue instead (receive_queue.py), whose
   one reader is the consumer. HTTP requests keep daphne's queue.

4. Bounds: what one client can make the server hold, enforced in autobahn and Twisted
   (daphne_bounds.py).

5. Start. daphne has no ASGI lifespan; the runtime's background work (the fleet heartbeat)
   is started when its event loop starts.

Under other ASGI servers (uvicorn) nothing is patched.
"""

import asyncio
import logging
import sys
from functools import partial

from realtime.core.refusals import CLOSE_REASON_BYTES
from realtime.server.adapters.receive_queue import ReceiveQueue

__all__ = ["apply"]

logger = logging.getLogger("daphne.server")

# Registered codes that an endpoint may send in a close frame (1004-1006 and 1015 may not).
_SENDABLE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def _server_close(self, code=None, reason=None):
    code = 1000 if code is None else code
    if code in _SENDABLE:
        reason_utf8 = reason.encode("utf-8")[:CLOSE_REASON_BYTES] if reason else None
        self.sendCloseFrame(code=code, reasonUtf8=reason_utf8, isReply=False)
    else:
        self.sendClose(code=code, reason=reason)  # 3000-4999 pass; anything else fails as before


def _reply_handler(handle_reply):
    """daphne's handle_reply, passing a close's reason on (daphne 4.2 drops it)."""

    def handle(self, message):
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            self.serverClose(code=message.get("code"), reason=message.get("reason"))
            return
        handle_reply(self, message)

    return handle


def _connection_closer(close_connection):
    """autobahn's _closeConnection, ending a cleanly closed connection with a FIN.

    Once the client has answered the server's close frame, autobahn's server drops the TCP
    connection with a reset (abort). Browsers report a reset as an unclean close (`wasClean`
    false) and reconnect as after a network failure, even after a refusal that says not to.
    RFC 6455 (7.1.1) has the server close TCP first, normally: after a completed closing
    handshake, it does. A connection failed for any other reason is still aborted.
    """

    def close(self, abort=False):
        close_connection(self, abort and not self.wasClean)

    return close


def _kill_all_applications(self):
    from twisted.internet import defer

    return defer.Deferred.fromFuture(asyncio.ensure_future(_shut_down(self)))


async def _shut_down(server) -> None:
    # Drain first: every client is closed with 1001 and deregistered in batches. Then the
    # applications are cancelled, as daphne does, and waited for: a registration still
    # under way is deleted once its write finishes.
    from realtime.server.shutdown import drain

    await drain()
    running = [
        details["application_instance"]
        for details in server.connections.values()
        if "application_instance" in details and not details["application_instance"].done()
    ]
    for application_instance in running:
        application_instance.cancel()
    logger.info("Killed %i pending application instances", len(running))
    await asyncio.gather(*running, return_exceptions=True)


def _create_application(self, protocol, scope):
    # daphne 4.2's Server.create_application, with a ReceiveQueue for WebSocket connections.
    assert "application_instance" not in self.connections[protocol]
    input_queue = ReceiveQueue() if scope.get("type") == "websocket" else asyncio.Queue()
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = self.application(
        scope=scope,
        receive=input_queue.get,
        send=partial(self.handle_reply, protocol),
    )
    if protocol not in self.connections:
        return None
    self.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance, loop=asyncio.get_event_loop()
    )
    return input_queue


def apply() -> None:
    if "daphne.server" not in sys.modules:
        return
    from daphne.server import Server, twisted_loop
    from daphne.ws_protocol import WebSocketProtocol

    from realtime.server.adapters import daphne_bounds  # imports Twisted's reactor: daphne's

    WebSocketProtocol.serverClose = _server_close
    WebSocketProtocol.handle_reply = _reply_handler(WebSocketProtocol.handle_reply)
    WebSocketProtocol._closeConnection = _connection_closer(WebSocketProtocol._closeConnection)
    Server.kill_all_applications = _kill_all_applications
    Server.create_application = _create_application
    daphne_bounds.apply()
    # daphne has no lifespan: the fleet heartbeat starts with its event loop, so that an
    # instance holds its lease (and reaps the dead) before its first connection.
    twisted_loop.call_soon(_start_runtime)


def _start_runtime() -> None:
    from realtime.server.runtime import runtime

    runtime().start()
