"""The registry table's schema: its key, its attributes and its two indexes.

The one definition of the table: `create_table` builds it from these, cursors read the
indexes' keys from them, and infrastructure templates are held to them. docs/registry.md
describes the item and the questions each index answers.
"""

__all__ = [
    "ATTRIBUTE_DEFINITIONS",
    "BILLING_MODE",
    "GLOBAL_SECONDARY_INDEXES",
    "INSTANCE_INDEX",
    "KEY_SCHEMA",
    "PARTITION_KEY",
    "SCOPE_KEY",
    "TENANT_INDEX",
    "TTL_ATTRIBUTE",
    "index_key_names",
]

# The table's only key: one item per connection.
PARTITION_KEY = "connection_id"
# Epoch seconds; DynamoDB's TTL deletes the item (late) once it has passed.
TTL_ATTRIBUTE = "ttl"
# The tenant index's sort key, `deployment_id#connection_type#connection_id` (codec.py).
SCOPE_KEY = "scope_key"

# Connections of a tenant, narrowed with begins_with on "deployment_id#connection_type#".
TENANT_INDEX = "by_tenant"
# Connections held by one server process: shutdown sweeps and dead-instance cleanup.
INSTANCE_INDEX = "by_instance"

BILLING_MODE = "PAY_PER_REQUEST"

KEY_SCHEMA = [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}]

# Only the attributes that some key is made of; DynamoDB refuses definitions of others.
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": name, "AttributeType": "S"}
    for name in (PARTITION_KEY, "tenant", SCOPE_KEY, "instance_id")
]

# Both indexes project every attribute, so that a query needs no second read.
GLOBAL_SECONDARY_INDEXES = [
    {
        "IndexName": TENANT_INDEX,
        "KeySchema": [
            {"AttributeName": "tenant", "KeyType": "HASH"},
            {"AttributeName": SCOPE_KEY, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
    {
        "IndexName": INSTANCE_INDEX,
        "KeySchema": [
            {"AttributeName": "instance_id", "KeyType": "HASH"},
            {"AttributeName": PARTITION_KEY, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
]


def index_key_names(index: str) -> tuple[str, str]:
    """An index's (partition key, sort key) attribute names.

    Raises:
        KeyError: not one of the table's indexes.
    """
    for definition in GLOBAL_SECONDARY_INDEXES:
        if definition["IndexName"] == index:
            partition, sort = (key["AttributeName"] for key in definition["KeySchema"])
            return partition, sort
    raise KeyError(index)
