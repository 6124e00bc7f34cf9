"""Membership: this instance's lease in the fleet, and what it does about the others'.

Every heartbeat this process renews its own lease, reads every lease of the fleet, and hands
the reading to the lease rules (realtime/core/leases.py). A lease that lapsed is taken over
with a conditional write, so that exactly one survivor reaps each dead instance: it deletes
the dead instance's items in chunks through the instance index (each deletion counts its
tenant's quota down once), bumping the lease's counter between chunks to keep its claim, and
deletes the lease last. Until the takeover, and while reaping, reads leave the instance's
connections out (the registry hides connections of instances whose lease is being reaped).

If this instance's own renewal finds its lease taken over (it was stalled, or cut off from
DynamoDB, for longer than a lease), the registry no longer knows its sockets: it is fenced.
It closes every socket with 1013 `registration_lost` and deletes what is left of their items,
then joins again under a new instance id. A renewal that fails because DynamoDB is
unavailable is not fencing: everyone fails then, and nobody is reaped.

docs/registry.md ("Fleet membership") has the why, and the table of failures.
"""

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

from realtime import metrics
from realtime.core.connection import isoformat
from realtime.core.leases import Lease, LeaseState, LeaseWatch
from realtime.core.logs import event
from realtime.registry import ConnectionRegistry, LeaseLost, RegistryError

__all__ = ["Membership"]

logger = logging.getLogger(__name__)

# Deletions in flight at once while reaping; the lease is bumped after each chunk.
REAP_CHUNK = 500


class Membership:
    """This process's lease: join, renew, watch the others, reap the dead, leave.

    Args:
        registry: where the leases and the items live.
        instance_id: the id this process joins with.
        held_count: how many connections this process holds (stored with each renewal).
        heartbeat_seconds: time between renewals.
        lease_seconds: how long a counter must stand still for its lease to have lapsed.
        version: this server's version, shown to operators.
        on_fenced: called with the old and the new instance id when the lease was taken over:
            closes every socket held under the old one.
        index_settle_seconds: how long the instance index may lag its table (reaping checks
            again after this long before it deletes the lease).
    """

    def __init__(
        self,
        *,
        registry: ConnectionRegistry,
        instance_id: str,
        held_count: Callable[[], int],
        heartbeat_seconds: float,
        lease_seconds: float,
        version: str,
        on_fenced: Callable[[str, str], Awaitable[None]],
        index_settle_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.registry = registry
        self.instance_id = instance_id
        self.held_count = held_count
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_seconds = lease_seconds
        self.version = version
        self.on_fenced = on_fenced
        self.index_settle_seconds = index_settle_seconds
        self.clock = clock
        self.started_at = time.time()
        self.held = False  # the lease is ours and was renewed (or written) last time we tried
        self.watch = self._new_watch()
        self._joining: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._reaping: dict[str, asyncio.Task] = {}
        self._left = False

    def _new_watch(self) -> LeaseWatch:
        return LeaseWatch(
            own_instance=self.instance_id,
            lease_seconds=self.lease_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            clock=self.clock,
        )

    def lease(self) -> Lease:
        """This instance's lease as it is first written."""
        return Lease(
            instance_id=self.instance_id,
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            started_at=isoformat(self.started_at),
            version=self.version,
            renewals=0,
            renewed_at=time.time(),
            state=LeaseState.LIVE,
            connections=self.held_count(),
        )

    # --- joining ----------------------------------------------------------------------------

    async def join(self) -> None:
        """Hold a lease before anything is registered under this instance's id.

        Concurrent callers (handshakes arriving at start) share one write.

        Raises:
            RegistryError: the lease could not be written (DynamoDB unavailable).
        """
        if self.held:
            return
        if self._joining is None or self._joining.done():
            self._joining = asyncio.ensure_future(self._acquire())
        await asyncio.shield(self._joining)

    async def _acquire(self) -> None:
        await self.registry.aacquire_lease(self.lease())
        self.held = True
        logger.info(event("instance.joined", instance_id=self.instance_id))

    def ensure_running(self) -> None:
        """Start the heartbeat in this event loop, once."""
        if self._left:
            return
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="fleet-heartbeat")

    async def _run(self) -> None:
        while True:
            started = self.clock()
            try:
                await self.beat()
            except Exception:  # the heartbeat must outlive any one bad round
                logger.exception(event("instance.heartbeat_failed", instance_id=self.instance_id))
            await asyncio.sleep(max(0.0, self.heartbeat_seconds - (self.clock() - started)))

    # --- one heartbeat ----------------------------------------------------------------------

    async def beat(self) -> None:
        """Renew (or join), read the fleet, and take over what lapsed."""
        renewed = await self._renew()
        try:
            leases = await self.registry.aleases()
        except RegistryError as exc:
            logger.warning(event("instance.fleet_read_failed", error=exc))
            self.watch.forget()
            return
        metrics.instances_live(sum(1 for lease in leases if lease.is_live))
        for lapsed in self.watch.observe(leases, own_renewal_ok=renewed):
            if lapsed.instance_id not in self._reaping:
                task = asyncio.get_running_loop().create_task(self._take_over(lapsed))
                self._reaping[lapsed.instance_id] = task
                task.add_done_callback(lambda _, i=lapsed.instance_id: self._reaping.pop(i, None))

    async def _renew(self) -> bool:
        if not self.held:
            try:
                await self.join()
            except RegistryError as exc:
                metrics.lease_renewal_failed("unavailable")
                logger.warning(event("instance.join_failed", error=exc))
                return False
            return True
        started = time.perf_counter()
        try:
            await self.registry.arenew_lease(
                self.instance_id, connections=self.held_count(), renewed_at=time.time()
            )
        except LeaseLost:
            metrics.lease_renewal_failed("lost")
            await self._fenced()
            return False
        except RegistryError as exc:
            metrics.lease_renewal_failed("unavailable")
            logger.warning(
                event("instance.renewal_failed", instance_id=self.instance_id, error=exc)
            )
            return False
        metrics.lease_renewed(time.perf_counter() - started)
        return True

    async def _fenced(self) -> None:
        """Our lease was taken over: nobody believes our sockets any more."""
        old = self.instance_id
        # Registrations from now on wait for a lease under the new id (join).
        self.held = False
        self.instance_id = self._rejoin_id(old)
        self.watch = self._new_watch()
        self.started_at = time.time()
        logger.warning(
            event(
                "instance.lease_lost",
                instance_id=old,
                connections=self.held_count(),
                rejoins_as=self.instance_id,
            )
        )
        await self.on_fenced(old, self.instance_id)

    def _rejoin_id(self, old: str) -> str:
        # host-pid-random, as every instance id: a fresh random part makes it a new instance.
        head, _, _ = old.rpartition("-")
        return f"{head}-{os.urandom(4).hex()}"

    # --- reaping ----------------------------------------------------------------------------

    async def _take_over(self, lapsed: Lease) -> None:
        dead = lapsed.instance_id
        try:
            renewals = await self.registry.atake_over_lease(lapsed, reaper=self.instance_id)
            if renewals is None:
                return  # it renewed after all, or another survivor got there first
            self.watch.claimed(dead, renewals)
            logger.info(event("instance.taken_over", instance_id=dead, by=self.instance_id))
            reaped = await self.reap(dead)
        except RegistryError as exc:
            # A claim that is not bumped lapses: another survivor (or we) takes it over again.
            logger.warning(event("instance.reap_failed", instance_id=dead, error=exc))
            return
        if reaped is not None:
            metrics.connections_reaped(reaped)
            logger.info(
                event("instance.reaped", instance_id=dead, by=self.instance_id, connections=reaped)
            )

    async def reap(self, dead: str) -> int | None:
        """Delete every item of `dead`, then its lease. Returns how many items were deleted, or
        None when the claim was lost on the way (another survivor goes on from there)."""
        deleted = 0
        settled = False
        while True:
            items = await self.registry.ainstance_items(dead)
            if not items:
                if settled:
                    break
                # The instance index lags its table: an item written just before the instance
                # died may not be listed yet. Look once more before the lease goes.
                settled = True
                await asyncio.sleep(self.index_settle_seconds)
                continue
            settled = False
            for start in range(0, len(items), REAP_CHUNK):
                chunk = items[start : start + REAP_CHUNK]
                outcomes = await asyncio.gather(
                    *(self.registry.aderegister(item.connection_id) for item in chunk),
                    return_exceptions=True,
                )
                failures = [o for o in outcomes if isinstance(o, BaseException)]
                deleted += len(chunk) - len(failures)
                if await self.registry.abump_reaping(dead, reaper=self.instance_id) is None:
                    return None
                if failures:
                    raise RegistryError(f"{len(failures)} items of {dead} could not be deleted")
        await self.registry.arelease_lease(dead, reaper=self.instance_id)
        return deleted

    # --- leaving ----------------------------------------------------------------------------

    async def leave(self, *, clean: bool) -> None:
        """Stop the heartbeat; delete our lease if every item of ours is gone (`clean`), or
        let it lapse, so that a survivor reaps what is left."""
        self._left = True
        if self._task is not None:
            self._task.cancel()
        for task in list(self._reaping.values()):
            task.cancel()
        if clean and self.held:
            try:
                await self.registry.arelease_lease(self.instance_id)
            except RegistryError as exc:
                logger.warning(
                    event("instance.leave_failed", instance_id=self.instance_id, error=exc)
                )
                return
        logger.info(event("instance.left", instance_id=self.instance_id, clean=clean))
