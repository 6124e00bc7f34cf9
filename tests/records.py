"""Registry records for tests, written straight to the table."""

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
