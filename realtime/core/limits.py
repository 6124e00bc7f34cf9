"""Per-connection message rate: a token bucket, and a second one that measures abuse.

Pure code with an injected clock. A client may send `rate` messages per second on average,
in bursts of up to `burst`. A message over the rate is refused (the client gets an error frame
and the message is dropped); each refusal drains the abuse bucket, which holds `abuse`
refusals and refills in ten seconds, so a client that keeps sending over the rate for long is
closed with 1008, while one that bursts past the limit now and then is only told to slow down.
"""

import enum

__all__ = ["ABUSE_WINDOW_SECONDS", "AddressGate", "MessageRate", "Verdict"]

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


class AddressGate:
    """Per client address, on one instance: open connections, and handshakes per second.

    Pure code with an injected clock. What it holds is bounded by what clients do now: an
    address is kept while it has open connections, and its handshake bucket until the bucket
    has refilled (those are swept once the table passes SWEEP_AT entries).

    Args:
        max_connections: open connections per address; 0 is no limit.
        handshake_rate: handshakes per second per address, on average; 0 is no limit.
        handshake_burst: handshakes an address may make at once.
    """

    SWEEP_AT = 10_000

    def __init__(self, *, max_connections: int, handshake_rate: float, handshake_burst: int):
        self.max_connections = max_connections
        self.handshake_rate = handshake_rate
        self.handshake_burst = float(max(handshake_burst, 1))
        self._open: dict[str, int] = {}
        self._buckets: dict[str, list[float]] = {}  # address -> [tokens, updated]

    def handshake(self, address: str, now: float) -> bool:
        """Account for a handshake from `address`; False when it is over the rate."""
        if self.handshake_rate <= 0:
            return True
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.SWEEP_AT:
                self._sweep(now)
            bucket = self._buckets[address] = [self.handshake_burst, now]
        tokens = min(self.handshake_burst, bucket[0] + (now - bucket[1]) * self.handshake_rate)
        bucket[1] = now
        if tokens < 1.0 - _EPSILON:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def open(self, address: str) -> bool:
        """Count a connection from `address` as open; False (not counted) at the cap."""
        count = self._open.get(address, 0)
        if self.max_connections and count >= self.max_connections:
            return False
        self._open[address] = count + 1
        return True

    def close(self, address: str) -> None:
        """A connection counted by `open` ended."""
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)

    def open_count(self, address: str) -> int:
        return self._open.get(address, 0)

    def _sweep(self, now: float) -> None:
        full = [
            address
            for address, (tokens, updated) in self._buckets.items()
            if tokens + (now - updated) * self.handshake_rate >= self.handshake_burst
        ]
        for address in full:
            del self._buckets[address]
