"""The transport's bounds (bounds.py) under daphne 4.2: autobahn's and Twisted's classes,
patched where the bytes are.

- Message size: daphne's own limit is 1 MiB, applied to what the server sends as well, and
  a message over it drops the TCP connection without a close frame. Instead autobahn's limits
  are lifted and each frame's header is checked against WS_MAX_MESSAGE_BYTES as it arrives
  (`onMessageFrameBegin`): a frame that would take the message past it fails the connection
  with 1009 before its payload is read. Failing is a closing handshake (`failByDrop` off),
  not a dropped socket. daphne never negotiates compression, so the size checked is the
  size kept.
- Control frames: autobahn answers every ping at once. Here each ping or pong spends from
  the connection's control budget first; over it the ping goes unanswered, and sustained
  over it the connection is refused with 1008.
- Unsent data: daphne writes every message to the socket's buffer at once, however slowly
  the client reads. After each write the buffer is measured; past WS_MAX_UNSENT_BYTES the
  connection is failed (the close frame queues behind the data; the socket is dropped a
  second later if the client still does not read).
- The handshake: Twisted's HTTP channel resets its idle timer on every byte, so a request
  sent a byte at a time is never timed out. Each connection gets HANDSHAKE_TIMEOUT_SECONDS
  to finish its request's headers, and autobahn's opening-handshake timeout is the same.
- Over-long request lines and headers get 414 and 431 instead of a closed socket.
"""

from twisted.internet import reactor
from twisted.web import http

from realtime.core.limits import Verdict
from realtime.core.refusals import refusal
from realtime.server.adapters import bounds
from realtime.server.adapters.bounds import control_frame_verdict, refusal_text

__all__ = ["apply"]

_TOO_LONG = {
    True: b"HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    False: (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    ),
}


# --- WebSocket connections -------------------------------------------------------------------


def _refuse(protocol, code: str) -> None:
    """End a connection for a bound it broke: error frame, close frame, the refusal noted for
    the application's disconnect event. Once."""
    if getattr(protocol, "refusal", None) is not None:
        return
    protocol.refusal = code
    if code != "slow_consumer" and protocol.state == protocol.STATE_OPEN:
        protocol.sendMessage(refusal_text(code).encode("utf-8"))
    protocol._fail_connection(refusal(code).close_code, code)  # the code is the reason


def _patch_websocket(protocol_class, factory_class) -> None:
    # autobahn's and daphne's own, which the replacements call.
    set_options = factory_class.setProtocolOptions
    begin_frame = protocol_class.onMessageFrameBegin
    answer_ping = protocol_class.onPing
    take_pong = protocol_class.onPong
    write_message = protocol_class.serverSend

    def set_protocol_options(self, **options):
        handshake = bounds.handshake_seconds()
        options.update(
            # Our own inbound check replaces these: theirs also refuse what the server sends.
            maxMessagePayloadSize=0,
            maxFramePayloadSize=0,
            failByDrop=False,  # fail with a closing handshake: the client learns the code
            openHandshakeTimeout=handshake,
            # Echo a client's close code and reason, as RFC 6455 suggests and uvicorn does.
            echoCloseCodeReason=True,
        )
        set_options(self, **options)

    def on_message_frame_begin(self, length):
        begin_frame(self, length)
        if not self.failedByMe and self.message_data_total_length > bounds.max_message_bytes():
            _refuse(self, "message_too_big")

    def spend_control(self) -> bool:
        rate = self.__dict__.get("control_rate")
        if rate is None:  # made at the first control frame: most connections never send one
            rate = self.control_rate = bounds.control_rate()
        verdict = control_frame_verdict(rate)
        if verdict is Verdict.ABUSE:
            _refuse(self, "rate_limited")
        return verdict is Verdict.ALLOW

    def on_ping(self, payload):
        if spend_control(self):
            answer_ping(self, payload)

    def on_pong(self, payload):
        if spend_control(self):
            take_pong(self, payload)

    def server_send(self, content, binary=False):
        if getattr(self, "refusal", None) is not None:
            return  # ending: what the application still sends goes nowhere, as under uvicorn
        write_message(self, content, binary)
        transport = self.transport
        # Twisted's FileDescriptor: what it holds but could not write yet.
        unsent = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        if unsent > bounds.max_unsent_bytes():
            _refuse(self, "slow_consumer")

    def on_close(self, wasClean, code, reason):
        # daphne 4.2's onClose, with the refusal (if a bound ended the connection) in the
        # application's disconnect event.
        self.server.protocol_disconnected(self)
        if not self.muted and hasattr(self, "application_queue"):
            message = {"type": "websocket.disconnect", "code": code}
            if getattr(self, "refusal", None) is not None:
                message["refusal"] = self.refusal
            self.application_queue.put_nowait(message)
        client = "{}:{}".format(*self.client_addr) if self.client_addr else None
        self.server.log_action(
            "websocket", "disconnected", {"path": self.request.path, "client": client}
        )

    factory_class.setProtocolOptions = set_protocol_options
    protocol_class.onMessageFrameBegin = on_message_frame_begin
    protocol_class.onPing = on_ping
    protocol_class.onPong = on_pong
    protocol_class.serverSend = server_send
    protocol_class.onClose = on_close


# --- the HTTP request before the upgrade ---------------------------------------------------


def _patch_http(factory_class) -> None:
    build_protocol = factory_class.buildProtocol
    all_headers_received = http.HTTPChannel.allHeadersReceived

    def build(self, addr):
        protocol = build_protocol(self, addr)
        # Twisted wraps the HTTP/1.1 channel in a protocol that could switch to HTTP/2.
        channel = getattr(protocol, "_channel", protocol)
        channel.header_deadline = reactor.callLater(
            bounds.handshake_seconds(), _header_deadline, channel
        )
        return protocol

    def headers_done(self):
        deadline = getattr(self, "header_deadline", None)
        if deadline is not None and deadline.active():
            deadline.cancel()
        self.header_deadline = None
        all_headers_received(self)

    def line_too_long(self, line):
        # No request yet: the request line itself was too long.
        self.transport.write(_TOO_LONG[not self.requests])
        self.transport.loseConnection()

    factory_class.buildProtocol = build
    http.HTTPChannel.allHeadersReceived = headers_done
    http.HTTPChannel.lineLengthExceeded = line_too_long


def _header_deadline(channel) -> None:
    channel.header_deadline = None
    if channel.transport is not None and channel.transport.connected:
        channel.transport.abortConnection()


def apply() -> None:
    from daphne.http_protocol import HTTPFactory
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

    _patch_websocket(WebSocketProtocol, WebSocketFactory)
    _patch_http(HTTPFactory)
