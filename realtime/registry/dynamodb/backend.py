"""DynamoDBRegistry: the connection registry in one DynamoDB table.

The class fulfils the contract of base.py by composing this package's modules, each a set of
functions over a `Table` (client.py): writes.py, quota.py, batches.py, reads.py, table.py.
What it keeps itself is what callers may change on a live registry (the client, the clock,
the tenant limit) and the coalescing of concurrent async writes into batch calls. The
consistency rules it implements are described once, in docs/registry.md.
"""

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from realtime.core.connection import Connection
from realtime.core.leases import Lease
from realtime.registry.base import ConnectionRegistry, Page, TableReport
from realtime.registry.coalescing import Coalescer
from realtime.registry.dynamodb import batches, leases, quota, reads, writes
from realtime.registry.dynamodb import table as table_admin
from realtime.registry.dynamodb.client import Table
from realtime.registry.errors import RegistryError

__all__ = ["DynamoDBRegistry"]


class DynamoDBRegistry(ConnectionRegistry):
    """Connection records in one DynamoDB table.

    Args:
        client: a boto3 DynamoDB client (see `make_client`).
        table_name: the table, created by `create_table` or by infrastructure code.
        clock: epoch seconds now; reads treat items with `ttl` before it as gone.
        max_workers: threads for the async twins; match the client's connection pool.
        tenant_limit: open connections allowed per tenant across every instance; 0 is no
            limit. Enforced with a counter item per tenant (see docs/registry.md).
        lease_ttl_seconds: how long a lease item outlives its last renewal before DynamoDB
            deletes it (the safety net for a fleet that died whole, like items' TTL).
    """

    def __init__(
        self,
        *,
        client,
        table_name: str,
        clock: Callable[[], float] = time.time,
        max_workers: int = 16,
        tenant_limit: int = 0,
        lease_ttl_seconds: int = 3600,
    ):
        super().__init__(table_name=table_name, max_workers=max_workers)
        self.client = client
        self.clock = clock
        self.tenant_limit = tenant_limit
        self.lease_ttl_seconds = lease_ttl_seconds
        # Concurrent registrations and deregistrations go out as batch calls (coalescing.py).
        self._registrations = Coalescer(
            self._async(self.register_batch), max_batch=batches.BATCH_SIZE
        )
        self._deregistrations = Coalescer(
            self._async(self.deregister_batch), max_batch=batches.BATCH_SIZE
        )

    @property
    def client(self):
        """The boto3 client; replacing it (tests wrap it) moves every later call to it."""
        return self.table.client

    @client.setter
    def client(self, client) -> None:
        self.table = Table(client, self.table_name)

    @property
    def location(self) -> str:
        """The URL the client sends requests to (AWS's regional endpoint unless overridden)."""
        return self.client.meta.endpoint_url

    def with_table(self, table_name: str) -> "DynamoDBRegistry":
        return DynamoDBRegistry(
            client=self.client,
            table_name=table_name,
            clock=self.clock,
            tenant_limit=self.tenant_limit,
            lease_ttl_seconds=self.lease_ttl_seconds,
        )

    # --- writes (writes.py; with a tenant limit, quota.py too) ---------------------------

    def register(self, connection: Connection) -> None:
        """Write a new connection's item; never overwrites an existing one.

        Raises:
            QuotaExceeded: the tenant has its `tenant_limit` connections open.
            RegistryError: the id is already taken (it never is for a uuid4).
            RegistryUnavailable: DynamoDB failed; the item may or may not have been written.
        """
        writes.register(self.table, connection, tenant_limit=self.tenant_limit)

    def refresh(self, connection_id: str, expires_at: int) -> bool:
        """Move an existing item's TTL to `expires_at`.

        Returns False when the item is gone: a refresh never recreates a deregistered item.
        """
        return writes.refresh(self.table, connection_id, expires_at)

    def deregister(self, connection_id: str) -> None:
        """Delete a connection's item. Deleting an item that is already gone is not an error."""
        writes.deregister(self.table, connection_id, tenant_limit=self.tenant_limit)

    def deregister_many(
        self,
        connection_ids: Iterable[str],
        *,
        tenants: Mapping[str, str] | None = None,
        attempts: int = 5,
    ) -> list[str]:
        """Delete many items with batch writes, each call tried up to `attempts` times.
        Returns the ids that could not be deleted.

        With quotas on, `tenants` (id -> tenant) says whose counters to count down for the
        deleted items; an item deleted by someone else meanwhile is counted down twice.
        """
        return writes.deregister_many(
            self.table,
            connection_ids,
            tenants=tenants,
            tenant_limit=self.tenant_limit,
            attempts=attempts,
        )

    def quota_state(self, tenant: str) -> tuple[int, int]:
        """A tenant's counter as (open connections counted, version); (0, 0) when absent.

        The version changes with every write to the counter.
        """
        return quota.quota_state(self.table, tenant)

    def lower_quota(self, tenant: str, *, to: int, version: int) -> bool:
        """Set a tenant's counter to `to` if it was not written since `version` was read.

        Returns whether it was set. See docs/registry.md ("Per-tenant quota") for when this is
        safe: the caller must have counted the live items after the version was read, and late
        enough for the tenant index to show every registration made before that.
        """
        return quota.lower_quota(self.table, tenant, to=to, version=version)

    # --- reads (reads.py: expired items are never returned) ------------------------------

    def get(self, connection_id: str) -> Connection | None:
        found = reads.get(self.table, connection_id, clock=self.clock)
        return None if found is None or found.instance_id in self.written_off() else found

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
            InvalidCursor: a cursor not issued for this tenant.
        """
        return reads.for_tenant(
            self.table,
            tenant,
            deployment_id=deployment_id,
            connection_type=connection_type,
            limit=limit,
            cursor=cursor,
            clock=self.clock,
            written_off=self.written_off(),
        )

    def instance_page(
        self, instance_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page:
        """Live connections held by one server process, in pages (connection id order).

        Raises:
            InvalidCursor: a cursor not issued for this instance.
        """
        return reads.instance_page(
            self.table,
            instance_id,
            limit=limit,
            cursor=cursor,
            clock=self.clock,
            written_off=self.written_off(),
        )

    def for_instance(
        self, instance_id: str, *, include_expired: bool = False
    ) -> Iterator[Connection]:
        """Every connection recorded as held by one server process; with `include_expired`
        (reaping, reconciliation, purges) also those reads leave out."""
        if not include_expired and instance_id in self.written_off():
            return iter(())
        return reads.for_instance(
            self.table, instance_id, include_expired=include_expired, clock=self.clock
        )

    def counts(self, *, tenant: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """Live connections counted as {tenant: {deployment_id: {connection_type: n}}}.

        For one tenant a Query; for every tenant the registry's one Scan (reads.py).
        """
        return reads.counts(
            self.table, tenant=tenant, clock=self.clock, written_off=self.written_off()
        )

    def expired_ids(self) -> Iterator[str]:
        """Ids of items past their TTL that DynamoDB has not deleted yet (a Scan)."""
        return reads.expired_ids(self.table, clock=self.clock)

    # --- the fleet (leases.py) -----------------------------------------------------------

    def _lease_expiry(self) -> int:
        return int(self.clock()) + self.lease_ttl_seconds

    def acquire_lease(self, lease: Lease) -> None:
        leases.acquire(self.table, lease, expires_at=self._lease_expiry())

    def renew_lease(self, instance_id: str, *, connections: int, renewed_at: float) -> int:
        return leases.renew(
            self.table,
            instance_id,
            connections=connections,
            renewed_at=renewed_at,
            expires_at=self._lease_expiry(),
        )

    def leases(self) -> list[Lease]:
        return self._saw_fleet(leases.list_fleet(self.table))

    def lease(self, instance_id: str) -> Lease | None:
        return leases.get(self.table, instance_id)

    def take_over_lease(self, lease: Lease, *, reaper: str) -> int | None:
        return leases.take_over(self.table, lease, reaper=reaper)

    def bump_reaping(self, instance_id: str, *, reaper: str) -> int | None:
        return leases.bump_reaping(self.table, instance_id, reaper=reaper)

    def release_lease(self, instance_id: str, *, reaper: str | None = None) -> bool:
        return leases.release(self.table, instance_id, reaper=reaper)

    # --- the table (table.py) ----------------------------------------------------------

    def create_table(self, *, wait: bool = False, wait_seconds: float = 300) -> TableReport:
        """Create the table, its indexes and TTL; on an existing table add what is missing.

        Raises:
            RegistryError: the table exists with another key schema, or TTL on another attribute.
            RegistryUnavailable: DynamoDB cannot be reached or refuses the call.
        """
        return table_admin.create_table(self.table, wait=wait, wait_seconds=wait_seconds)

    def describe_table(self) -> dict | None:
        return table_admin.describe_table(self.table)

    # --- batches: what coalesced async writes become -----------------------------------

    def register_batch(self, connections: Sequence[Connection]) -> list[BaseException | None]:
        """Register several connections in one call; one outcome per connection, in order.

        One connection is a plain `register`. More are `BatchWriteItem` puts: one call
        instead of many, at the write units of plain puts. Batch puts cannot carry a
        condition, and need none: connection ids are uuid4s this server makes, so there is no
        item to overwrite. (A `TransactWriteItems` of conditional puts would cost twice the
        write units, and moto copies the whole table for each transaction.)
        """
        if len(connections) == 1:
            return [_outcome(self.register, connections[0])]
        return batches.put_all(self.table, connections)

    def deregister_batch(self, connection_ids: Sequence[str]) -> list[BaseException | None]:
        """Deregister several connections in one call; one outcome per id, in order."""
        if len(connection_ids) == 1 or self.tenant_limit:
            # With quotas, each delete must say whether it deleted, to count down once.
            return [_outcome(self.deregister, cid) for cid in connection_ids]
        failed = set(self.deregister_many(connection_ids))
        return [batches.unprocessed("delete") if cid in failed else None for cid in connection_ids]

    # --- async twins: registrations and deregistrations coalesced ------------------------

    async def aregister(self, connection: Connection) -> None:
        if self.tenant_limit:  # each registration is a transaction with the tenant's counter
            await self._async(self.register)(connection)
        else:
            await self._registrations.submit(connection)

    async def aderegister(self, connection_id: str) -> None:
        await self._deregistrations.submit(connection_id)


def _outcome(call: Callable, argument) -> BaseException | None:
    """`call(argument)`'s failure as a value, for one request of a batch."""
    try:
        call(argument)
    except RegistryError as exc:
        return exc
    return None
