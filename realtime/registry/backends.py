"""The registry backend a process uses, chosen in this one place from its settings."""

from realtime.registry.base import ConnectionRegistry
from realtime.registry.disabled import DisabledRegistry
from realtime.registry.dynamodb import DynamoDBRegistry, make_client

__all__ = ["registry_from_settings"]


def registry_from_settings(settings) -> ConnectionRegistry:
    """DynamoDB, configured by the settings; or, with REGISTRY_ENABLED false (benchmarks
    only), a registry that records nothing."""
    if not settings.REGISTRY_ENABLED:
        return DisabledRegistry()
    client = make_client(
        region=settings.AWS_REGION,
        endpoint_url=settings.DYNAMODB_ENDPOINT_URL,
        access_key_id=settings.AWS_ACCESS_KEY_ID,
        secret_access_key=settings.AWS_SECRET_ACCESS_KEY,
        connect_timeout=settings.DYNAMODB_CONNECT_TIMEOUT,
        read_timeout=settings.DYNAMODB_READ_TIMEOUT,
        max_attempts=settings.DYNAMODB_MAX_ATTEMPTS,
        max_connections=settings.DYNAMODB_MAX_CONNECTIONS,
    )
    return DynamoDBRegistry(
        client=client,
        table_name=settings.DYNAMODB_TABLE_NAME,
        max_workers=settings.DYNAMODB_MAX_CONNECTIONS,
        tenant_limit=settings.WS_TENANT_MAX_CONNECTIONS,
        lease_ttl_seconds=settings.CONNECTION_TTL_SECONDS,
    )
