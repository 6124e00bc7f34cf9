"""uvicorn's websockets-sansio protocol, keeping less per connection and pausing reads less.

Run uvicorn with `--ws realtime.uvicorn_protocol:WebSocketProtocol` (README, "Choosing the ASGI
server"). Three changes to uvicorn 0.54's `WebSocketsSansIOProtocol`, each measured with
`python -m bench.run --server-cmd uvicorn` (docs/performance.md):

- the messages waiting for the application sit in a `ReceiveQueue` (receive_queue.py), not an
  `asyncio.Queue` (about 3 KiB per connection, idle or not);
- reading pauses once `PAUSE_AT` messages wait for the application, not after every message:
  uvicorn's pause-per-message costs two `epoll_ctl` calls a message, a sixth of an echo's CPU.
  Memory stays bounded: at most `PAUSE_AT` messages, plus what the last read had carried;
- the handshake's response, with its headers, is let go once it is sent.

Everything else, including the ASGI events and close codes, is uvicorn's own. uvicorn is pinned
in requirements.txt; the uvicorn end-to-end tests run through this class.
"""

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from realtime.server.adapters.receive_queue import ReceiveQueue

__all__ = ["PAUSE_AT", "WebSocketProtocol"]

# Messages waiting for the application before the socket stops being read. A consumer reads
# one message at a time, so this bounds what a client can make the server hold for it.
PAUSE_AT = 16


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queue = ReceiveQueue()

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

    async def send(self, message) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            self.response = None  # sent: nothing reads the handshake's response again
