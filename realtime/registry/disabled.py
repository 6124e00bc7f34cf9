"""DisabledRegistry: a registry that records nothing (`REGISTRY_ENABLED=false`).

Only for measuring what the registry costs (bench/): connections are served but recorded
nowhere, so every write succeeds at once and every read finds nothing. Never in production.
"""

from collections.abc import Iterable, Iterator, Mapping

from realtime.core.connection import Connection
from realtime.core.leases import Lease
from realtime.registry.base import ConnectionRegistry, Page, TableReport
from realtime.registry.errors import RegistryError

__all__ = ["DisabledRegistry"]


class DisabledRegistry(ConnectionRegistry):
    records = False  # reads find nothing, whatever was written

    def __init__(self, table_name: str = "(disabled)"):
        super().__init__(table_name=table_name, max_workers=1)

    @property
    def location(self) -> str:
        return "nowhere (REGISTRY_ENABLED=false)"

    # --- writes: accepted and forgotten ---------------------------------------------------

    def register(self, connection: Connection) -> None:
        return None

    def refresh(self, connection_id: str, expires_at: int) -> bool:
        return True  # the open connection stays open: nothing here says otherwise

    def deregister(self, connection_id: str) -> None:
        return None

    def deregister_many(
        self, connection_ids: Iterable[str], *, tenants: Mapping[str, str] | None = None
    ) -> list[str]:
        return []

    # --- reads: nothing was recorded ------------------------------------------------------

    def get(self, connection_id: str) -> Connection | None:
        return None

    def for_tenant(
        self,
        tenant: str,
        *,
        deployment_id: str | None = None,
        connection_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        if connection_type is not None and deployment_id is None:
            raise ValueError("connection_type narrows a deployment: give deployment_id too")
        return Page([], None)

    def instance_page(
        self, instance_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page:
        return Page([], None)

    def for_instance(
        self, instance_id: str, *, include_expired: bool = False
    ) -> Iterator[Connection]:
        return iter(())

    def counts(self, *, tenant: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        return {}

    def expired_ids(self) -> Iterator[str]:
        return iter(())

    def quota_state(self, tenant: str) -> tuple[int, int]:
        return (0, 0)

    def lower_quota(self, tenant: str, *, to: int, version: int) -> bool:
        return False

    # --- the fleet: nothing is recorded, so nobody is ever written off -------------------

    def acquire_lease(self, lease: Lease) -> None:
        return None

    def renew_lease(self, instance_id: str, *, connections: int, renewed_at: float) -> int:
        return 1

    def leases(self) -> list[Lease]:
        return self._saw_fleet([])

    def lease(self, instance_id: str) -> Lease | None:
        return None

    def take_over_lease(self, lease: Lease, *, reaper: str) -> int | None:
        return None

    def bump_reaping(self, instance_id: str, *, reaper: str) -> int | None:
        return None

    def release_lease(self, instance_id: str, *, reaper: str | None = None) -> bool:
        return False

    # --- the table: there is none ---------------------------------------------------------

    def create_table(self, *, wait: bool = False, wait_seconds: float = 300) -> TableReport:
        raise RegistryError(
            "the registry is disabled (REGISTRY_ENABLED=false): it records nothing and has "
            "no table to create"
        )

    def describe_table(self) -> dict | None:
        return None

    def with_table(self, table_name: str) -> "DisabledRegistry":
        return DisabledRegistry(table_name)

    # --- async twins without the thread hop: the benchmark measures the registry's cost ---

    async def aregister(self, connection: Connection) -> None:
        return None

    async def arefresh(self, connection_id: str, expires_at: int) -> bool:
        return True

    async def aderegister(self, connection_id: str) -> None:
        return None

    async def aderegister_many(self, connection_ids, *, tenants=None) -> list[str]:
        return []

    async def ainstance_items(self, instance_id: str) -> list[Connection]:
        return []
