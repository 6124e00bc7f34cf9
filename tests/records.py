"""Registry records for tests: `conn` makes one, the sets below serve several suites, and
`seed` writes many straight to a DynamoDB table."""

from realtime.core.connection import Connection, isoformat
from realtime.registry.dynamodb import to_item
from tests.conftest import NOW

TTL = 3600


def conn(
    connection_id: str,
    *,
    tenant: str = "acme",
    deployment_id: str = "prod",
    connection_type: str = "client",
    expires_at: int = NOW + TTL,
    instance_id: str = "host-a-1-0a0b0c0d",
) -> Connection:
    return Connection(
        connection_id=connection_id,
        tenant=tenant,
        deployment_id=deployment_id,
        connection_type=connection_type,
        connected_at=isoformat(NOW),
        expires_at=expires_at,
        instance_id=instance_id,
        channel_name=f"specific.{connection_id}",
        client_addr="203.0.113.7:50123",
    )


def seed(registry, connections) -> None:
    """Write many items fast (BatchWriteItem); `register` itself is tested on its own."""
    items = [{"PutRequest": {"Item": to_item(c)}} for c in connections]
    for start in range(0, len(items), 25):
        response = registry.client.batch_write_item(
            RequestItems={registry.table_name: items[start : start + 25]}
        )
        assert not response["UnprocessedItems"]


# A tenant index's worth of records: tenants whose names share prefixes ("acm", "acme",
# "acme2"), deployments ("prod", "prod-1") and types ("client", "client-web") likewise, and
# expired items among them.
TENANT_DATA = [
    conn("a1"),
    conn("a2"),
    conn("a3", connection_type="client-web"),
    conn("a4", connection_type="worker"),
    conn("a5", deployment_id="prod-1"),
    conn("a6", deployment_id="prod-1"),
    conn("a7-expired", expires_at=NOW - 1),
    conn("a8-expired", deployment_id="prod-1", expires_at=NOW - 60),
    conn("b1", tenant="acme2"),
    conn("b2", tenant="acme2", deployment_id="prod-1"),
    conn("c1", tenant="acm"),
]

# (tenant, narrowing, the live ids of TENANT_DATA it selects, in index order)
TENANT_NARROWINGS = [
    ("acme", {}, ["a1", "a2", "a3", "a4", "a5", "a6"]),
    ("acme", {"deployment_id": "prod"}, ["a1", "a2", "a3", "a4"]),
    ("acme", {"deployment_id": "prod-1"}, ["a5", "a6"]),
    ("acme", {"deployment_id": "prod", "connection_type": "client"}, ["a1", "a2"]),
    ("acme", {"deployment_id": "prod", "connection_type": "client-web"}, ["a3"]),
    ("acme", {"deployment_id": "prod-1", "connection_type": "client"}, ["a5", "a6"]),
    ("acme", {"deployment_id": "pro"}, []),
    ("acme2", {}, ["b1", "b2"]),
    ("acm", {}, ["c1"]),
    ("nobody", {}, []),
]


def live_among_expired(expired_between: int) -> list[Connection]:
    """250 live records of acme/prod, each followed by `expired_between` expired ones, and one
    of another deployment: with expired items between, a Query whose Limit is the page size
    returns about a third of a page once the filter has run."""
    data = []
    for i in range(250):
        data.append(conn(f"live-{i:03d}"))
        data += [conn(f"live-{i:03d}-x{j}", expires_at=NOW - 1) for j in range(expired_between)]
    data.append(conn("other-deployment", deployment_id="prod-1"))
    return data


def read_all_pages(registry, tenant: str, **query) -> list:
    """Every page of a for_tenant query, following cursors to the end."""
    pages, cursor = [], None
    while True:
        page = registry.for_tenant(tenant, cursor=cursor, **query)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"
