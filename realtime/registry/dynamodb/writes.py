"""Writes of connection items: register, refresh, deregister (one or many).

A registration never overwrites another connection's item, and every later write is
conditional on the item still existing, so a late refresh never resurrects a deregistered
connection (docs/registry.md, "Writes"). With a tenant limit, registrations and
deregistrations also move the tenant's counter (quota.py).
"""

from collections import Counter
from collections.abc import Iterable, Mapping

from botocore.exceptions import ClientError

from realtime.core.connection import Connection
from realtime.registry.dynamodb import batches, quota
from realtime.registry.dynamodb.client import Table
from realtime.registry.dynamodb.codec import to_item
from realtime.registry.dynamodb.schema import TTL_ATTRIBUTE
from realtime.registry.errors import RegistryError

__all__ = ["deregister", "deregister_many", "refresh", "register"]


def register(table: Table, connection: Connection, *, tenant_limit: int) -> None:
    """Write a new connection's item; never overwrites an existing one.

    Raises:
        QuotaExceeded: the tenant has `tenant_limit` connections open (0 is no limit).
        RegistryError: the id is already taken (it never is for a uuid4).
        RegistryUnavailable: DynamoDB failed; the item may or may not have been written.
    """
    if tenant_limit:
        quota.register_within_quota(table, connection, limit=tenant_limit)
        return
    item = to_item(connection)
    try:
        table.api_call(
            "put_item",
            Item=item,
            ConditionExpression="attribute_not_exists(connection_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response.get("Item") == item:
            return  # a retry of our own put, whose first attempt landed after all
        raise RegistryError(f"connection id {connection.connection_id} exists") from exc


def refresh(table: Table, connection_id: str, expires_at: int) -> bool:
    """Move an existing item's TTL to `expires_at`.

    Returns False when the item is gone: a refresh never recreates a deregistered item.
    """
    try:
        table.api_call(
            "update_item",
            Key={"connection_id": {"S": connection_id}},
            UpdateExpression="SET #ttl = :ttl",
            ConditionExpression="attribute_exists(connection_id)",
            ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
            ExpressionAttributeValues={":ttl": {"N": str(expires_at)}},
        )
    except ClientError:
        return False
    return True


def deregister(table: Table, connection_id: str, *, tenant_limit: int) -> None:
    """Delete a connection's item. Deleting an item that is already gone is not an error."""
    key = {"connection_id": {"S": connection_id}}
    if not tenant_limit:
        table.api_call("delete_item", Key=key)
        return
    # The old item says whether this call deleted it, and whose counter to count down.
    old = table.api_call("delete_item", Key=key, ReturnValues="ALL_OLD").get("Attributes")
    if old and "tenant" in old:
        quota.release_quota(table, old["tenant"]["S"], 1)


def deregister_many(
    table: Table,
    connection_ids: Iterable[str],
    *,
    tenants: Mapping[str, str] | None,
    tenant_limit: int,
    attempts: int,
) -> list[str]:
    """Delete many items with batch writes. Returns the ids that could not be deleted.

    With quotas on, `tenants` (id -> tenant) says whose counters to count down for the
    deleted items. Batch writes do not say whether an item existed, so an item deleted
    by someone else meanwhile is counted down twice; the counter then admits one more
    connection than the limit until it is next recounted.
    """
    ids = list(dict.fromkeys(connection_ids))
    failed = batches.delete_all(table, ids, attempts)
    if tenant_limit and tenants:
        deleted = Counter(tenants[cid] for cid in set(ids) - set(failed) if cid in tenants)
        for tenant, count in deleted.items():
            quota.release_quota(table, tenant, count)
    return failed
