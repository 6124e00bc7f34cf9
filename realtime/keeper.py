"""TtlKeeper: keeps the registry items of this process's open connections from expiring.

TTL is the safety net for items whose server died, not a liveness signal: while a connection
is open its item must stay readable, whether the client pings or not. The keeper refreshes an
item once less than half of CONNECTION_TTL_SECONDS is left, sweeping every TTL_REFRESH_SECONDS;
a client's `ping` only brings a due refresh forward. With the defaults (3600 s, 300 s) that is
about two writes per connection-hour, however often clients ping. docs/registry.md has the why.
"""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Protocol

from django.conf import settings

from .connection import Connection
from .logs import event
from .registry import ConnectionRegistry, RegistryError, get_registry

__all__ = ["Holder", "TtlKeeper", "get_keeper"]

logger = logging.getLogger(__name__)


class Holder(Protocol):
    """What the keeper needs of an open connection (the consumer)."""

    record: Connection

    async def registration_lost(self) -> None:
        """The item vanished (purged, or expired during an outage): the socket must close."""


class TtlKeeper:
    def __init__(
        self,
        *,
        registry: ConnectionRegistry,
        ttl_seconds: int,
        refresh_seconds: int,
        clock: Callable[[], float] = time.time,
        concurrency: int = 16,
    ):
        self.registry = registry
        self.ttl_seconds = ttl_seconds
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.concurrency = concurrency
        self._held: dict[str, Holder] = {}
        self._in_flight: set[str] = set()
        self._task: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._held)

    def held_ids(self) -> list[str]:
        return list(self._held)

    def track(self, holder: Holder) -> None:
        self._held[holder.record.connection_id] = holder
        self._ensure_running()

    def untrack(self, connection_id: str) -> None:
        self._held.pop(connection_id, None)

    def is_due(self, record: Connection, now: float) -> bool:
        return record.expires_at - now <= self.ttl_seconds / 2

    def touch(self, holder: Holder) -> None:
        """A sign of life from the client: start the refresh now if one is due."""
        record = holder.record
        if self.is_due(record, self.clock()) and record.connection_id not in self._in_flight:
            self._in_flight.add(record.connection_id)
            task = asyncio.ensure_future(self._refresh(holder))
            task.add_done_callback(lambda _: self._in_flight.discard(record.connection_id))

    async def sweep(self) -> int:
        """Refresh every held connection that is due. Returns how many were due."""
        now = self.clock()
        due = [
            holder
            for cid, holder in list(self._held.items())
            if cid not in self._in_flight and self.is_due(holder.record, now)
        ]
        # All of them in flight from the start: a ping while earlier chunks are being written
        # must not start a second refresh of a connection in a later chunk.
        ids = [h.record.connection_id for h in due]
        self._in_flight.update(ids)
        try:
            for start in range(0, len(due), self.concurrency):
                chunk = due[start : start + self.concurrency]
                await asyncio.gather(*(self._refresh(h) for h in chunk))
        finally:
            self._in_flight.difference_update(ids)
        return len(due)

    async def _refresh(self, holder: Holder) -> None:
        record = holder.record
        expires_at = int(self.clock()) + self.ttl_seconds
        try:
            exists = await self.registry.arefresh(record.connection_id, expires_at)
        except RegistryError as exc:
            # Left due: the next ping or sweep tries again; the item has half a TTL of slack.
            logger.warning(
                event("registry.refresh_failed", connection_id=record.connection_id, error=exc)
            )
            return
        if record.connection_id not in self._held:
            return  # closed meanwhile; the conditional write cannot have recreated it
        if exists:
            holder.record = dataclasses.replace(holder.record, expires_at=expires_at)
        else:
            logger.warning(event("registry.item_lost", connection_id=record.connection_id))
            self.untrack(record.connection_id)
            await holder.registration_lost()

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="ttl-keeper")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.sweep()
            except Exception:  # the keeper must outlive any one bad sweep
                logger.exception(event("keeper.sweep_failed"))


_default: TtlKeeper | None = None


def get_keeper() -> TtlKeeper:
    """The process-wide keeper for the default registry."""
    global _default
    if _default is None or _default.registry is not get_registry():
        _default = TtlKeeper(
            registry=get_registry(),
            ttl_seconds=settings.CONNECTION_TTL_SECONDS,
            refresh_seconds=settings.TTL_REFRESH_SECONDS,
        )
    return _default
