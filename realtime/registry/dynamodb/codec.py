"""The item codec: a Connection as a DynamoDB item, and back.

Every attribute is a string (S) but `ttl`, DynamoDB's TTL attribute (N, epoch seconds).
`scope_key` exists for the tenant index only (schema.py): reading an item ignores it.
"""

from realtime.core.connection import FIELDS, Connection
from realtime.registry.dynamodb.schema import SCOPE_KEY, TTL_ATTRIBUTE

__all__ = ["ATTRIBUTES", "from_item", "scope_key", "to_item"]


def scope_key(deployment_id: str, connection_type: str, connection_id: str) -> str:
    """The tenant index's sort key: narrowing by deployment, then type, is `begins_with`."""
    # Values are validated to [A-Za-z0-9._-], so "#" cannot appear inside one.
    return f"{deployment_id}#{connection_type}#{connection_id}"


# Each field of the record (core/connection.py's FIELDS) and the attribute it is stored in:
# its own name, but the expiry, which is DynamoDB's TTL attribute (a number).
ATTRIBUTES = {name: TTL_ATTRIBUTE if name == "expires_at" else name for name in FIELDS}
_TEXT_FIELDS = tuple(name for name in FIELDS if name != "expires_at")


def to_item(connection: Connection) -> dict:
    item = {name: {"S": getattr(connection, name)} for name in _TEXT_FIELDS}
    item[TTL_ATTRIBUTE] = {"N": str(connection.expires_at)}
    item[SCOPE_KEY] = {
        "S": scope_key(
            connection.deployment_id, connection.connection_type, connection.connection_id
        )
    }
    return item


def from_item(item: dict) -> Connection:
    """The record an item holds; an attribute it lacks reads as "" (or 0 for `ttl`)."""
    fields = {name: item.get(name, {}).get("S", "") for name in _TEXT_FIELDS}
    return Connection(**fields, expires_at=int(item.get(TTL_ATTRIBUTE, {}).get("N", "0")))
