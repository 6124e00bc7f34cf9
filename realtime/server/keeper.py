"""TtlKeeper: keeps this process's registry items exact, and from expiring.

Two jobs, both about the items of the connections this process holds:

- TTL refresh. TTL is the safety net for items whose server died, not a liveness signal:
  while a connection is open its item must stay readable, whether the client pings or not.
  The keeper refreshes an item once less than half of CONNECTION_TTL_SECONDS is left,
  sweeping every TTL_REFRESH_SECONDS; a client's `ping` only brings a due refresh forward.
  With the defaults (3600 s, 300 s) that is about two writes per connection-hour, however
  often clients ping.
- Reconciliation. When a registry call for one of our connections fails (a deregistration
  during an outage, a registration whose write may land late), the keeper later lists this
  instance's items (its `by_instance` partition) and deletes those that no local connection
  stands behind, retrying with backoff until DynamoDB answers.

docs/registry.md has the why of both.
"""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Protocol

from realtime.core.connection import Connection
from realtime.core.logs import event
from realtime.registry import ConnectionRegistry, RegistryError

__all__ = ["Holder", "TtlKeeper"]

logger = logging.getLogger(__name__)

QUOTA_RECOUNT_INTERVAL = 30.0  # seconds between recounts of one tenant's counter, per process


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
        instance: str,
        clock: Callable[[], float] = time.time,
        concurrency: int = 16,
        reconcile_delay: float = 3.0,
        index_settle_seconds: float = 2.0,
    ):
        self.registry = registry
        self.ttl_seconds = ttl_seconds
        self.refresh_seconds = refresh_seconds
        self.instance = instance
        self.clock = clock
        self.concurrency = concurrency
        # Long enough for a write that timed out on our side to land, or never, on DynamoDB's.
        self.reconcile_delay = reconcile_delay
        self._held: dict[str, Holder] = {}
        self._claimed: set[str] = set()  # registrations under way
        self._in_flight: set[str] = set()
        self._task: asyncio.Task | None = None
        self._dirty = False
        self._repair: asyncio.Task | None = None
        # Global secondary indexes lag their table, usually by well under a second.
        self.index_settle_seconds = index_settle_seconds
        self._recounted: dict[str, float] = {}
        self._background: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self._held)

    def held_ids(self) -> list[str]:
        return list(self._held)

    def holders(self) -> list[Holder]:
        return list(self._held.values())

    def holder(self, connection_id: str) -> Holder | None:
        return self._held.get(connection_id)

    def is_claimed(self, connection_id: str) -> bool:
        """Whether a registration for this id is under way here."""
        return connection_id in self._claimed

    def claim(self, connection_id: str) -> None:
        """A registration or deregistration is under way: reconciliation leaves its item alone
        (deleting an item twice would count a tenant's quota down twice)."""
        self._claimed.add(connection_id)

    def track(self, holder: Holder) -> None:
        """The connection is registered: keep its item alive."""
        connection_id = holder.record.connection_id
        self._claimed.discard(connection_id)
        self._held[connection_id] = holder
        self._ensure_running()

    def untrack(self, connection_id: str) -> None:
        self._claimed.discard(connection_id)
        self._held.pop(connection_id, None)

    # --- reconciliation ---------------------------------------------------------------------

    def mark_dirty(self) -> None:
        """A registry write for one of our connections failed: reconcile once DynamoDB answers."""
        self._dirty = True
        if self._repair is None or self._repair.done():
            self._repair = asyncio.get_running_loop().create_task(self._repair_loop())

    @property
    def dirty(self) -> bool:
        return self._dirty

    async def reconcile(self) -> int:
        """Delete this instance's items that no local connection stands behind.

        Returns how many were deleted.

        Raises:
            RegistryError: DynamoDB failed; nothing is known to be fixed.
        """
        listed = await self.registry.ainstance_items(self.instance)
        # Read after the listing: a registration claims its id before it writes, so an item
        # in the listing always has its id in one of these sets if it is still wanted.
        orphans = {
            c.connection_id: c.tenant
            for c in listed
            if c.connection_id not in self._held and c.connection_id not in self._claimed
        }
        if not orphans:
            return 0
        failed = await self.registry.aderegister_many(orphans, tenants=orphans)
        if failed:
            raise RegistryError(f"{len(failed)} orphaned items could not be deleted")
        logger.info(event("registry.reconciled", instance_id=self.instance, removed=len(orphans)))
        return len(orphans)

    # --- quota recount -------------------------------------------------------------------

    def recount_quota_soon(self, tenant: str) -> None:
        """A connection was refused over the tenant's quota: check the counter for drift.

        In the background, at most once per QUOTA_RECOUNT_INTERVAL per tenant and process;
        the refused client is not kept waiting.
        """
        now = time.monotonic()
        if now - self._recounted.get(tenant, -QUOTA_RECOUNT_INTERVAL) < QUOTA_RECOUNT_INTERVAL:
            return
        self._recounted[tenant] = now
        task = asyncio.get_running_loop().create_task(self.recount_quota(tenant))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def recount_quota(self, tenant: str) -> bool:
        """Lower the tenant's counter to its live items if it counts more. True if lowered.

        The counter drifts up when DynamoDB expires an orphan that was never counted down.
        The version read first, then a pause long enough for the tenant index to show every
        registration made before it, then the count, then a write conditional on the version:
        a registration or deregistration anywhere in between voids the write.
        """
        try:
            counted, version = await self.registry.aquota_state(tenant)
            await asyncio.sleep(self.index_settle_seconds)
            live = await self.registry.alive_count(tenant)
            lowered = live < counted and await self.registry.alower_quota(
                tenant, to=live, version=version
            )
        except RegistryError as exc:
            logger.warning(event("registry.quota_recount_failed", tenant=tenant, error=exc))
            return False
        if lowered:
            logger.info(
                event("registry.quota_recounted", tenant=tenant, counted=counted, live=live)
            )
        return lowered

    async def _repair_loop(self) -> None:
        delay = self.reconcile_delay
        while self._dirty:
            await asyncio.sleep(delay)
            self._dirty = False  # a failure from now on sets it again
            try:
                await self.reconcile()
            except RegistryError as exc:
                self._dirty = True
                delay = min(delay * 2, 60.0)
                logger.warning(event("registry.reconcile_failed", error=exc, retry_in=delay))

    def is_due(self, record: Connection, now: float) -> bool:
        return record.expires_at - now <= self.ttl_seconds / 2

    def touch(self, holder: Holder) -> None:
        """A sign of life from the client: start the refresh now if one is due."""
        record = holder.record
        if self.is_due(record, self.clock()) and record.connection_id not in self._in_flight:
            self._in_flight.add(record.connection_id)
            task = asyncio.ensure_future(self._refresh(holder, record))
            task.add_done_callback(lambda _: self._in_flight.discard(record.connection_id))

    async def sweep(self) -> int:
        """Refresh every held connection that is due. Returns how many were due."""
        now = self.clock()
        # Each record taken now: a connection in a later chunk may close (and drop its
        # record) while earlier chunks are being written.
        due = [
            (holder, holder.record)
            for cid, holder in list(self._held.items())
            if cid not in self._in_flight and self.is_due(holder.record, now)
        ]
        # All of them in flight from the start: a ping while earlier chunks are being written
        # must not start a second refresh of a connection in a later chunk.
        ids = [record.connection_id for _, record in due]
        self._in_flight.update(ids)
        try:
            for start in range(0, len(due), self.concurrency):
                chunk = due[start : start + self.concurrency]
                await asyncio.gather(*(self._refresh(*pair) for pair in chunk))
        finally:
            self._in_flight.difference_update(ids)
        return len(due)

    async def _refresh(self, holder: Holder, record: Connection) -> None:
        if record.connection_id not in self._held:
            return  # closed since the refresh was decided: nothing to keep alive
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
