"""Per-connection message rate: a token bucket, and a second one that measures abuse.

Pure code with an injected clock. A client may send `rate` messages per second on average,
in bursts of up to `burst`. A message over the rate is refused (the client gets an error frame
and the message is dropped); each refusal drains the abuse bucket, which holds `abuse`
refusals and refills in ten seconds, so a client that keeps sending over the rate for long is
closed with 1008, while one that bursts past the limit now and then is only told to slow down.
"""

import enum

__all__ = ["ABUSE_WINDOW_SECONDS", "MessageRate", "Verdict"]

ABUSE_WINDOW_SECONDS = 10.0
_EPSILON = 1e-9


class Verdict(enum.Enum):
    ALLOW = "allow"
    REFUSE = "refuse"  # error frame, message dropped
    ABUSE = "abuse"  # error frame, then close with 1008


class MessageRate:
    """The rate state of one connection: four floats.

    Args:
        rate: messages per second on average; 0 turns the limit off.
        burst: messages allowed at once (the bucket's size).
        abuse: refusals within ABUSE_WINDOW_SECONDS that close the connection.
        now: the clock's current reading (seconds, monotonic).
    """

    __slots__ = ("_abuse_tokens", "_tokens", "_updated", "abuse", "burst", "rate")

    def __init__(self, *, rate: float, burst: int, abuse: int, now: float):
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.abuse = float(max(abuse, 1))
        self._tokens = self.burst
        self._abuse_tokens = self.abuse
        self._updated = now

    def check(self, now: float) -> Verdict:
        """Account for one incoming message at `now`."""
        if self.rate <= 0:
            return Verdict.ALLOW
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._abuse_tokens = min(
            self.abuse, self._abuse_tokens + elapsed * self.abuse / ABUSE_WINDOW_SECONDS
        )
        if self._tokens > 1.0 - _EPSILON:  # a client sending exactly at the rate is allowed
            self._tokens = max(0.0, self._tokens - 1.0)
            return Verdict.ALLOW
        self._abuse_tokens -= 1.0
        return Verdict.ABUSE if self._abuse_tokens < 0 else Verdict.REFUSE
