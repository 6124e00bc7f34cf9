"""ConnectionRegistry: the contract every registry backend fulfils.

Callers (the consumer, the keeper, delivery, the API, the operator pages, the commands) use
these methods and nothing else, so that swapping the store touches no caller. The rules
behind them (conditional writes, TTL as a safety net, expired items never read) are in
docs/registry.md; a backend states in its own docstrings how it meets them.

Every method is synchronous; the `a*` twins run it on the registry's own thread pool through
`sync_to_async(thread_sensitive=False)`, so a slow store ties up those threads only, never
the event loop or Django's single sync thread. A backend may replace a twin with something
cheaper (DynamoDB coalesces concurrent registrations into batch calls).
"""

import abc
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async

from realtime.core.connection import Connection
from realtime.core.leases import Lease

__all__ = ["ConnectionRegistry", "Page", "TableReport"]


@dataclass(frozen=True, slots=True)
class Page:
    connections: list[Connection]
    cursor: str | None  # pass back to get the next page; None on the last page


@dataclass(slots=True)
class TableReport:
    """What `create_table` found and did."""

    table_name: str
    created: bool = False
    status: str = ""
    ttl_enabled_now: bool = False
    indexes_created: list[str] = field(default_factory=list)


class ConnectionRegistry(abc.ABC):
    """Live connection records, one per open connection of any server instance.

    Args:
        table_name: where the records live, as operators name it.
        max_workers: threads for the async twins.
    """

    # False for a backend that keeps nothing (its reads find nothing, whatever was written).
    records = True

    def __init__(self, *, table_name: str, max_workers: int = 16):
        self.table_name = table_name
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="registry")
        # Instances whose connections reads leave out, as of the last fleet read.
        self._written_off: frozenset[str] = frozenset()

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the store is, for messages to operators (an endpoint URL, "aws", ...)."""

    # --- writes -------------------------------------------------------------------------

    @abc.abstractmethod
    def register(self, connection: Connection) -> None:
        """Record a new connection; never overwrites another connection's record.

        Raises:
            QuotaExceeded: the tenant is at its limit (nothing was written).
            RegistryError: the id is already taken.
            RegistryUnavailable: the store failed; the record may or may not have been written.
        """

    @abc.abstractmethod
    def refresh(self, connection_id: str, expires_at: int) -> bool:
        """Move an existing record's expiry. False when the record is gone: a refresh never
        recreates a deregistered connection."""

    @abc.abstractmethod
    def deregister(self, connection_id: str) -> None:
        """Delete a connection's record; deleting one that is already gone is not an error."""

    @abc.abstractmethod
    def deregister_many(
        self, connection_ids: Iterable[str], *, tenants: Mapping[str, str] | None = None
    ) -> list[str]:
        """Delete many records. Returns the ids that could not be deleted. `tenants` (id ->
        tenant) says whose quota counters to count down for the deleted ones."""

    # --- reads: expired records are never returned ----------------------------------------

    @abc.abstractmethod
    def get(self, connection_id: str) -> Connection | None:
        """One live connection, or None."""

    @abc.abstractmethod
    def for_tenant(
        self,
        tenant: str,
        *,
        deployment_id: str | None = None,
        connection_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Live connections of a tenant, narrowed by deployment and then type, in pages.

        Raises:
            ValueError: connection_type given without deployment_id.
            InvalidCursor: a cursor not issued for this query.
        """

    @abc.abstractmethod
    def instance_page(
        self, instance_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page:
        """Live connections held by one server instance, in pages.

        Raises:
            InvalidCursor: a cursor not issued for this instance.
        """

    @abc.abstractmethod
    def for_instance(
        self, instance_id: str, *, include_expired: bool = False
    ) -> Iterator[Connection]:
        """Every connection recorded as held by one server instance."""

    @abc.abstractmethod
    def counts(self, *, tenant: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """Live connections counted as {tenant: {deployment_id: {connection_type: n}}}."""

    def live_count(self, tenant: str) -> int:
        """How many live connections a tenant has."""
        deployments = self.counts(tenant=tenant).get(tenant, {})
        return sum(sum(types.values()) for types in deployments.values())

    @abc.abstractmethod
    def expired_ids(self) -> Iterator[str]:
        """Ids of records past their expiry that the store has not deleted yet."""

    # --- per-tenant quota ----------------------------------------------------------------

    @abc.abstractmethod
    def quota_state(self, tenant: str) -> tuple[int, int]:
        """A tenant's counter as (open connections counted, version); (0, 0) when absent."""

    @abc.abstractmethod
    def lower_quota(self, tenant: str, *, to: int, version: int) -> bool:
        """Set a tenant's counter to `to` if it was not written since `version` was read and
        counts more. Returns whether it was set."""

    # --- the fleet: instance leases (docs/registry.md, "Fleet membership") ------------------

    @abc.abstractmethod
    def acquire_lease(self, lease: Lease) -> None:
        """Write a new instance's lease (its counter at 0).

        Raises:
            RegistryError: a lease with this instance id exists.
            RegistryUnavailable: the store failed.
        """

    @abc.abstractmethod
    def renew_lease(self, instance_id: str, *, connections: int, renewed_at: float) -> int:
        """Bump the instance's own live lease; returns its new counter.

        Raises:
            LeaseLost: the lease was taken over, or is gone: the instance is fenced.
            RegistryUnavailable: the store failed.
        """

    @abc.abstractmethod
    def leases(self) -> list[Lease]:
        """Every instance's lease, oldest instance first. Also what reads go by: connections
        of instances whose lease is being reaped are left out of every read from then on."""

    @abc.abstractmethod
    def lease(self, instance_id: str) -> Lease | None:
        """One instance's lease, read consistently; None when it has none."""

    @abc.abstractmethod
    def take_over_lease(self, lease: Lease, *, reaper: str) -> int | None:
        """Claim a lapsed lease for reaping if its counter is still `lease.renewals`.
        Returns the new counter, or None when someone else moved it first."""

    @abc.abstractmethod
    def bump_reaping(self, instance_id: str, *, reaper: str) -> int | None:
        """The reaper's sign of life on the lease it reaps; None when the claim was lost."""

    @abc.abstractmethod
    def release_lease(self, instance_id: str, *, reaper: str | None = None) -> bool:
        """Delete the instance's own live lease (`reaper` None), or the lease `reaper` finished
        reaping. Returns whether it was deleted."""

    def written_off(self) -> frozenset[str]:
        """Instances whose connections reads leave out: those whose lease is being reaped.

        As of the last fleet read (`leases`), without I/O: a server's heartbeat reads the
        fleet every few seconds, and a command reads it once before it lists anything.
        """
        return self._written_off

    def _saw_fleet(self, leases: list[Lease]) -> list[Lease]:
        """Backends call this with every fleet they read; returns it."""
        self._written_off = frozenset(lease.instance_id for lease in leases if not lease.is_live)
        return leases

    # --- the table -------------------------------------------------------------------------

    @abc.abstractmethod
    def create_table(self, *, wait: bool = False, wait_seconds: float = 300) -> TableReport:
        """Create the store's table and indexes, or add what an existing one lacks.

        Raises:
            RegistryError: the existing table cannot serve as this registry.
            RegistryUnavailable: the store cannot be reached.
        """

    @abc.abstractmethod
    def describe_table(self) -> dict | None:
        """The table's description, or None when it does not exist."""

    @abc.abstractmethod
    def with_table(self, table_name: str) -> "ConnectionRegistry":
        """The same store and client, another table (`create_ws_table --table`)."""

    # --- async twins ------------------------------------------------------------------------

    def _async(self, method):
        return sync_to_async(method, thread_sensitive=False, executor=self._executor)

    async def aregister(self, connection: Connection) -> None:
        await self._async(self.register)(connection)

    async def arefresh(self, connection_id: str, expires_at: int) -> bool:
        return await self._async(self.refresh)(connection_id, expires_at)

    async def aderegister(self, connection_id: str) -> None:
        await self._async(self.deregister)(connection_id)

    async def aderegister_many(
        self, connection_ids: Iterable[str], *, tenants: Mapping[str, str] | None = None
    ) -> list[str]:
        return await self._async(self.deregister_many)(list(connection_ids), tenants=tenants)

    async def aget(self, connection_id: str) -> Connection | None:
        return await self._async(self.get)(connection_id)

    async def afor_tenant(self, tenant: str, **kwargs) -> Page:
        return await self._async(self.for_tenant)(tenant, **kwargs)

    async def ainstance_items(self, instance_id: str) -> list[Connection]:
        """Every record of one instance, expired ones included."""

        def items() -> list[Connection]:
            return list(self.for_instance(instance_id, include_expired=True))

        return await self._async(items)()

    async def ainstance_page(self, instance_id: str, **kwargs) -> Page:
        return await self._async(self.instance_page)(instance_id, **kwargs)

    async def aquota_state(self, tenant: str) -> tuple[int, int]:
        return await self._async(self.quota_state)(tenant)

    async def alower_quota(self, tenant: str, *, to: int, version: int) -> bool:
        return await self._async(self.lower_quota)(tenant, to=to, version=version)

    async def alive_count(self, tenant: str) -> int:
        return await self._async(self.live_count)(tenant)

    async def acounts(self, *, tenant: str | None = None) -> dict:
        return await self._async(self.counts)(tenant=tenant)

    async def adescribe_table(self) -> dict | None:
        return await self._async(self.describe_table)()

    async def aacquire_lease(self, lease: Lease) -> None:
        await self._async(self.acquire_lease)(lease)

    async def arenew_lease(self, instance_id: str, *, connections: int, renewed_at: float) -> int:
        return await self._async(self.renew_lease)(
            instance_id, connections=connections, renewed_at=renewed_at
        )

    async def aleases(self) -> list[Lease]:
        return await self._async(self.leases)()

    async def alease(self, instance_id: str) -> Lease | None:
        return await self._async(self.lease)(instance_id)

    async def atake_over_lease(self, lease: Lease, *, reaper: str) -> int | None:
        return await self._async(self.take_over_lease)(lease, reaper=reaper)

    async def abump_reaping(self, instance_id: str, *, reaper: str) -> int | None:
        return await self._async(self.bump_reaping)(instance_id, reaper=reaper)

    async def arelease_lease(self, instance_id: str, *, reaper: str | None = None) -> bool:
        return await self._async(self.release_lease)(instance_id, reaper=reaper)
