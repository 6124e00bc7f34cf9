"""Idle timeout and maximum lifetime: one sweep over the process's connections, not a timer each.

A timer per connection would be re-armed on every message; instead each connection records
when it opened and when its client last sent something (two floats), and a sweep every few
seconds closes those past a limit. Limits are enforced to within one sweep interval.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from realtime.core.logs import event

__all__ = ["Expirable", "TimeoutSweeper", "sweep_interval"]

logger = logging.getLogger(__name__)


class Expirable(Protocol):
    opened_at: float  # monotonic seconds
    last_seen: float  # monotonic seconds of the client's last message

    async def expire(self, reason: str) -> None:
        """Close the connection because a limit was reached ("idle_timeout", "max_lifetime")."""


def sweep_interval(idle_seconds: float, lifetime_seconds: float) -> float:
    """A quarter of the shortest limit in force, between 1 and 30 seconds."""
    limits = [limit for limit in (idle_seconds, lifetime_seconds) if limit > 0]
    return min(30.0, max(1.0, min(limits) / 4)) if limits else 0.0


class TimeoutSweeper:
    def __init__(
        self,
        *,
        connections: Callable[[], Iterable[Expirable]],
        idle_seconds: float,
        lifetime_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.connections = connections
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock
        self.interval = sweep_interval(idle_seconds, lifetime_seconds)
        self._task: asyncio.Task | None = None

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def reason(self, connection: Expirable, now: float) -> str | None:
        if self.lifetime_seconds > 0 and now - connection.opened_at >= self.lifetime_seconds:
            return "max_lifetime"
        if self.idle_seconds > 0 and now - connection.last_seen >= self.idle_seconds:
            return "idle_timeout"
        return None

    async def sweep(self) -> int:
        """Close every connection past a limit. Returns how many were closed."""
        now = self.clock()
        expired = [
            (connection, reason)
            for connection in list(self.connections())
            if (reason := self.reason(connection, now)) is not None
        ]
        for connection, reason in expired:
            await connection.expire(reason)
        return len(expired)

    def ensure_running(self) -> None:
        if not self.enabled:
            return
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="timeout-sweeper")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception:  # the sweeper must outlive any one bad sweep
                logger.exception(event("timeouts.sweep_failed"))
