"""Inbox: this process's one channel on the channel layer, for requests to its connections.

Every item records the inbox's channel name; delivery.py sends requests there with the
connection's id, and one receive loop per process hands each to the consumer that holds that
connection. One channel per process rather than one per connection: a connection then costs no
channel-layer receive of its own (no task, no queue, no Redis read), and a request for a
connection that is no longer here is answered at once instead of timing out.

The loop waits out channel-layer outages (Redis down) with jittered backoff: sockets keep
working meanwhile, and requests fail visibly at their senders.
"""

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from channels.layers import get_channel_layer

from realtime.core.logs import event

__all__ = [
    "ACK",
    "BROADCAST",
    "DISCONNECT",
    "MESSAGE",
    "NACK",
    "Inbox",
    "Recipient",
]

logger = logging.getLogger(__name__)

# Requests (delivery.py sends them) and answers.
MESSAGE = "connection.message"  # {"connection_id", "data", "ack"}
DISCONNECT = "connection.disconnect"  # {"connection_id", "code", "ack"}
BROADCAST = "connection.broadcast"  # {"connection_ids", "data"}: no answer
ACK = "connection.ack"  # the request was carried out
NACK = "connection.nack"  # no such connection here

_REGISTRATION_WAITS = 40  # of 50 ms: two seconds at most


class Recipient(Protocol):
    async def handle_request(self, message: dict) -> bool:
        """Carry out a request; False if the connection is already ending."""


class Inbox:
    def __init__(
        self,
        *,
        find: Callable[[str], Recipient | None],
        registering: Callable[[str], bool],
        layer_alias: str = "default",
    ):
        self.find = find
        self.registering = registering
        self.layer_alias = layer_alias
        self.channel_name: str | None = None
        self._task: asyncio.Task | None = None
        self._last_outage_log = 0.0

    async def address(self) -> str:
        """The channel name to record in items; starts the receive loop on first use."""
        layer = get_channel_layer(self.layer_alias)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self.channel_name = await layer.new_channel()
            self._task = loop.create_task(self._run(layer), name="inbox")
        return self.channel_name

    async def _run(self, layer) -> None:
        delay = 0.5
        while True:
            try:
                message = await layer.receive(self.channel_name)
            except Exception as exc:  # the backend's own client errors (Redis down)
                self._log_outage(exc)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            # Each request on its own task: a slow client must not hold up the others.
            asyncio.get_running_loop().create_task(self._handle(layer, message))

    async def _handle(self, layer, message: dict) -> None:
        if message.get("type") == BROADCAST:
            await self._broadcast(message)
            return
        connection_id = message.get("connection_id", "")
        recipient = self.find(connection_id)
        # A request can overtake the end of a registration that is already written: give it
        # the moment it needs rather than report the connection gone.
        for _ in range(_REGISTRATION_WAITS):
            if recipient is not None or not self.registering(connection_id):
                break
            await asyncio.sleep(0.05)
            recipient = self.find(connection_id)
        done = recipient is not None and await recipient.handle_request(message)
        if message.get("ack"):
            try:
                await layer.send(message["ack"], {"type": ACK if done else NACK})
            except Exception as exc:  # the layer failed after we acted: the sender times out
                self._log_outage(exc)

    async def _broadcast(self, message: dict) -> None:
        request = {"type": MESSAGE, "data": message["data"]}
        for connection_id in message["connection_ids"]:
            recipient = self.find(connection_id)
            if recipient is not None:
                await recipient.handle_request(request)

    def _log_outage(self, exc: Exception) -> None:
        # One line per ten seconds during an outage, not one per request.
        now = time.monotonic()
        if now - self._last_outage_log >= 10:
            self._last_outage_log = now
            logger.warning(event("channel_layer.unavailable", error=exc))
