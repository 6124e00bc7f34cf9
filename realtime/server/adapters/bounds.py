"""What the transport bounds for every WebSocket connection, under either server.

The limits a client could otherwise use to make the server hold memory or CPU, enforced where
the bytes are, before the application sees them (the daphne and uvicorn adapters call this):

- a message, whole or in fragments, compressed or not, is never buffered past
  WS_MAX_MESSAGE_BYTES (plus the frame header that announced too much): 1009
  `message_too_big`;
- control frames (ping, pong) have a rate budget of their own, with the message rate's
  settings: a flood is refused like a message flood, 1008 `rate_limited`;
- data the server wrote but the client has not read is never more than WS_MAX_UNSENT_BYTES:
  a client that stops reading is closed, 1008 `slow_consumer`, and its buffer let go.

The limits are read from settings when they are checked. A refusal here reaches the
client as the `error` frame and close code the refusal table (core/refusals.py) gives it, and
the application as a `websocket.disconnect` carrying the refusal's code under `refusal`, so
that the connection's end is logged and counted as what it was. The README's "Bounds" lists
these with the others.
"""

import time

from django.conf import settings

from realtime.core import protocol
from realtime.core.limits import MessageRate, Verdict
from realtime.core.refusals import refusal

__all__ = [
    "control_frame_verdict",
    "control_rate",
    "handshake_seconds",
    "max_message_bytes",
    "max_unsent_bytes",
    "refusal_text",
]


def max_message_bytes() -> int:
    return settings.WS_MAX_MESSAGE_BYTES


def max_unsent_bytes() -> int:
    return settings.WS_MAX_UNSENT_BYTES


def handshake_seconds() -> float:
    return settings.HANDSHAKE_TIMEOUT_SECONDS


def control_rate() -> MessageRate:
    """A connection's control-frame budget: the message rate's settings, a bucket apart."""
    return MessageRate(
        rate=settings.WS_RATE_PER_SECOND,
        burst=settings.WS_RATE_BURST,
        abuse=settings.WS_RATE_ABUSE,
        now=time.monotonic(),
    )


def control_frame_verdict(rate: MessageRate) -> Verdict:
    """Account for one ping or pong from the client."""
    return rate.check(time.monotonic())


def refusal_text(code: str) -> str:
    """The `error` frame the client gets before the close, as the application would send it."""
    return protocol.error(code, refusal(code).detail)
