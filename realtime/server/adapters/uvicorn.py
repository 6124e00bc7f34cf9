"""uvicorn's websockets-sansio protocol, keeping less per connection, pausing reads less, and
holding each client to the transport's bounds (bounds.py).

Run uvicorn with `--ws realtime.uvicorn_protocol:WebSocketProtocol` and `--http
realtime.uvicorn_protocol:HttpProtocol` (README, "Choosing the ASGI server"). Changes to
uvicorn 0.54's `WebSocketsSansIOProtocol`:

- the messages waiting for the application sit in a `ReceiveQueue` (receive_queue.py), not an
  `asyncio.Queue` (about 3 KiB per connection, idle or not);
- reading pauses once `PAUSE_AT` messages wait for the application, not after every message:
  uvicorn's pause-per-message costs two `epoll_ctl` calls a message, a sixth of an echo's CPU.
  Memory stays bounded: at most `PAUSE_AT` messages, plus what the last read had carried;
- the handshake's response, with its headers, is let go once it is sent;
- a message is bounded by WS_MAX_MESSAGE_BYTES as websockets parses it (compressed or not:
  websockets bounds the inflated size), and the client gets an `error` frame and 1009;
- a connection websockets fails (a bound, a protocol error) ends with its close frame and a
  FIN, and the client's remaining data is read, not reset: browsers see a clean close;
- ping and pong frames spend from a control budget (sustained over it: 1008 `rate_limited`);
- a send never waits for a slow client: unsent data past WS_MAX_UNSENT_BYTES closes the
  connection (1008 `slow_consumer`) instead, so that one slow reader cannot hold up a
  broadcast to everyone else, nor pile data up;
- a request line or header websockets cannot take is answered (414, 431) rather than left
  hanging, and uvicorn's log lines never carry a client's token.

`HttpProtocol` is uvicorn's h11 protocol with a deadline: a connection that has not sent its
request's headers within HANDSHAKE_TIMEOUT_SECONDS is closed (uvicorn has no header timeout:
a request sent a byte at a time would be held for ever).

Everything else, including the ASGI events and close codes, is uvicorn's own. uvicorn is pinned
in requirements.txt; the uvicorn end-to-end tests run through these classes.
"""

import logging

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from realtime.core.limits import Verdict
from realtime.core.logs import TokenRedactor
from realtime.core.refusals import refusal
from realtime.server.adapters import bounds
from realtime.server.adapters.bounds import control_frame_verdict, refusal_text
from realtime.server.adapters.receive_queue import ReceiveQueue

__all__ = ["PAUSE_AT", "HttpProtocol", "WebSocketProtocol"]

# Messages waiting for the application before the socket stops being read. A consumer reads
# one message at a time, so this bounds what a client can make the server hold for it.
PAUSE_AT = 16
# The close handshake's grace for a connection ended for a bound or a protocol error, then the
# socket is dropped (and with it whatever the client did not read).
_FAILED_CLOSE_GRACE_SECONDS = 1.0

_redactor = TokenRedactor()


def _redact_uvicorn_logs() -> None:
    # uvicorn logs each handshake's path with its query string, token included, on its own
    # loggers (its access log is off in the README's command; this one is not).
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if _redactor not in logger.filters:
            logger.addFilter(_redactor)


class BoundedServerProtocol(ServerProtocol):
    """websockets' server protocol with the control-frame budget and the refusals' frames."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.refusal: str | None = None
        self.control_rate = None  # made at the first control frame

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.PING, Opcode.PONG) and self.state is State.OPEN:
            if self.control_rate is None:
                self.control_rate = bounds.control_rate()
            verdict = control_frame_verdict(self.control_rate)
            if verdict is Verdict.ABUSE:
                self.refuse("rate_limited")
            if verdict is not Verdict.ALLOW:
                return  # unanswered, unseen
        super().recv_frame(frame)

    def fail(self, code: CloseCode | int, reason: str = "") -> None:
        if code == CloseCode.MESSAGE_TOO_BIG and self.refusal is None:
            self.refuse("message_too_big")
            return
        super().fail(code, reason)

    def refuse(self, code: str) -> None:
        """End the connection for a bound it broke: error frame, then close, once."""
        if self.refusal is not None or self.state is not State.OPEN:
            return
        self.refusal = code
        if code != "slow_consumer":
            self.send_text(refusal_text(code).encode("utf-8"))
        super().fail(refusal(code).close_code, code)  # the code is the reason, as in the consumer


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _redact_uvicorn_logs()
        self.queue = ReceiveQueue()
        extensions, self.conn = self.conn.available_extensions, None
        self.conn = BoundedServerProtocol(
            extensions=extensions,
            max_size=bounds.max_message_bytes(),
            logger=logging.getLogger("uvicorn.error"),
        )

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.handshake_exc is not None and not self.handshake_complete:
            # websockets answered (414, 431) into its buffer; uvicorn would never send it.
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
        elif self.conn.refusal is not None and not self.close_sent:
            self._end_failed()

    def send_receive_event_to_app(self) -> None:
        # uvicorn pauses reading after every message it queues; this lets `PAUSE_AT` queue.
        was_paused, self.read_paused = self.read_paused, True  # uvicorn's then leaves it be
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = was_paused
        if not was_paused and self.queue.qsize() >= PAUSE_AT:
            self.read_paused = True
            self.transport.pause_reading()  # `receive` resumes it once the queue is empty

    def pause_writing(self) -> None:
        # uvicorn would make every later send wait until the client reads. Sends go on
        # instead, bounded by WS_MAX_UNSENT_BYTES (`send`).
        pass

    async def send(self, message) -> None:
        if self.conn.refusal is not None:
            return  # ending for a bound it broke: what the application still sends goes nowhere
        await super().send(message)
        if message["type"] == "websocket.accept":
            self.response = None  # sent: nothing reads the handshake's response again
        elif (
            message["type"] == "websocket.send"
            and self.transport.get_write_buffer_size() > bounds.max_unsent_bytes()
        ):
            self.conn.refuse("slow_consumer")
            self._end_failed()

    def handle_parser_exception(self) -> None:
        # uvicorn's closes the socket at once: if the client is still sending (the rest of a
        # message too big, its close frame), the kernel resets the connection and browsers
        # report an unclean close.
        self._end_failed()

    def _end_failed(self) -> None:
        """End a connection websockets failed (a bound broken, a protocol error).

        The application is told (with the refusal, if any), the close frame goes out followed
        by a FIN, as RFC 6455 has a server close TCP first: a browser reads both and reports
        a clean close. What the client still sends is read and dropped until it closes its
        side; after a grace, the socket is dropped, with whatever the client did not read.
        """
        close = self.conn.close_sent
        if not self.close_sent:  # else the application already had its disconnect event
            message = {"type": "websocket.disconnect", "code": close.code, "reason": close.reason}
            if self.conn.refusal is not None:
                message["refusal"] = self.conn.refusal
            self.queue.put_nowait(message)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.transport.can_write_eof():
            self.transport.write_eof()  # after the buffered data, close frame included
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.loop.call_later(_FAILED_CLOSE_GRACE_SECONDS, self.transport.abort)


class HttpProtocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for a request's headers."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.header_deadline = self.loop.call_later(
            bounds.handshake_seconds(), self._headers_too_slow
        )

    def handle_events(self) -> None:
        super().handle_events()
        # A request's headers arrived (and, for an upgrade, the WebSocket took the socket
        # over in this same call): the deadline is met.
        if self.header_deadline is not None and self.scope is not None:
            self._end_deadline()

    def connection_lost(self, exc) -> None:
        self._end_deadline()
        super().connection_lost(exc)

    def _end_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_slow(self) -> None:
        self.header_deadline = None
        if not self.transport.is_closing():
            self.transport.abort()
