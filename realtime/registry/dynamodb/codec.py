"""The item codec: a Connection as a DynamoDB item, and back.

Every attribute is a string (S) but `ttl`, DynamoDB's TTL attribute (N, epoch seconds).
`scope_key` exists for the tenant index only (schema.py): reading an item ignores it.
"""

from realtime.core.connection import Connection
from realtime.registry.dynamodb.schema import SCOPE_KEY, TTL_ATTRIBUTE

__all__ = ["from_item", "scope_key", "to_item"]


def scope_key(deployment_id: str, connection_type: str, connection_id: str) -> str:
    """The tenant index's sort key: narrowing by deployment, then type, is `begins_with`."""
    # Values are validated to [A-Za-z0-9._-], so "#" cannot appear inside one.
    return f"{deployment_id}#{connection_type}#{connection_id}"


def to_item(connection: Connection) -> dict:
    return {
        "connection_id": {"S": connection.connection_id},
        "tenant": {"S": connection.tenant},
        "deployment_id": {"S": connection.deployment_id},
        "connection_type": {"S": connection.connection_type},
        "connected_at": {"S": connection.connected_at},
        TTL_ATTRIBUTE: {"N": str(connection.expires_at)},
        "instance_id": {"S": connection.instance_id},
        "channel_name": {"S": connection.channel_name},
        "client_addr": {"S": connection.client_addr},
        SCOPE_KEY: {
            "S": scope_key(
                connection.deployment_id, connection.connection_type, connection.connection_id
            )
        },
    }


def from_item(item: dict) -> Connection:
    """The record an item holds; an attribute it lacks reads as "" (or 0 for `ttl`)."""

    def text(name: str) -> str:
        return item.get(name, {}).get("S", "")

    return Connection(
        connection_id=text("connection_id"),
        tenant=text("tenant"),
        deployment_id=text("deployment_id"),
        connection_type=text("connection_type"),
        connected_at=text("connected_at"),
        expires_at=int(item.get(TTL_ATTRIBUTE, {}).get("N", "0")),
        instance_id=text("instance_id"),
        channel_name=text("channel_name"),
        client_addr=text("client_addr"),
    )
