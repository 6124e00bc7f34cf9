"""The DynamoDB registry backend: `DynamoDBRegistry` and what other code builds it from.

One module per job: client.py (the client, timed calls, errors), schema.py (the table's one
definition), codec.py (item <-> Connection), cursors.py, writes.py, quota.py, batches.py,
reads.py, table.py (create and check the table), and backend.py, the class composing them.
"""

from realtime.registry.dynamodb.backend import DynamoDBRegistry
from realtime.registry.dynamodb.client import make_client
from realtime.registry.dynamodb.codec import from_item, to_item
from realtime.registry.dynamodb.schema import (
    ATTRIBUTE_DEFINITIONS,
    GLOBAL_SECONDARY_INDEXES,
    INSTANCE_INDEX,
    TENANT_INDEX,
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
