"""The DynamoDB registry backend: `DynamoDBRegistry` and what other code builds it from."""

from realtime.registry.dynamodb.backend import (
    ATTRIBUTE_DEFINITIONS,
    GLOBAL_SECONDARY_INDEXES,
    INSTANCE_INDEX,
    TENANT_INDEX,
    DynamoDBRegistry,
    from_item,
    make_client,
    to_item,
)

__all__ = [
    "ATTRIBUTE_DEFINITIONS",
    "GLOBAL_SECONDARY_INDEXES",
    "INSTANCE_INDEX",
    "TENANT_INDEX",
    "DynamoDBRegistry",
    "from_item",
    "make_client",
    "to_item",
]
