"""Reads of connection items: one by id, a tenant's or an instance's, counts, expired ids.

DynamoDB deletes expired items late, so every read leaves out items whose `ttl` has passed
by the caller's clock, except where a caller asks for them. Listings are Queries of
the indexes (schema.py); only `counts` for every tenant and `expired_ids` Scan.
"""

import math
from collections.abc import Callable, Iterator

from realtime.core.connection import Connection
from realtime.registry.base import Page
from realtime.registry.dynamodb.client import Table
from realtime.registry.dynamodb.codec import from_item
from realtime.registry.dynamodb.cursors import decode_cursor, encode_cursor
from realtime.registry.dynamodb.schema import INSTANCE_INDEX, SCOPE_KEY, TENANT_INDEX, TTL_ATTRIBUTE

__all__ = ["counts", "expired_ids", "for_instance", "for_tenant", "get", "instance_page"]

# Epoch seconds now: an item whose `ttl` is before it is gone.
type Clock = Callable[[], float]


def get(table: Table, connection_id: str, *, clock: Clock) -> Connection | None:
    """One live connection, or None (also for an expired item DynamoDB still holds)."""
    response = table.api_call(
        "get_item", Key={"connection_id": {"S": connection_id}}, ConsistentRead=True
    )
    item = response.get("Item")
    if item is None:
        return None
    connection = from_item(item)
    return None if connection.is_expired(clock()) else connection


def for_tenant(
    table: Table,
    tenant: str,
    *,
    deployment_id: str | None,
    connection_type: str | None,
    limit: int,
    cursor: str | None,
    clock: Clock,
    written_off: frozenset[str],
) -> Page:
    """Live connections of a tenant, narrowed by deployment and then type, in pages.

    Raises:
        ValueError: connection_type given without deployment_id.
        InvalidCursor: a cursor not issued for this tenant.
    """
    if connection_type is not None and deployment_id is None:
        raise ValueError("connection_type narrows a deployment: give deployment_id too")
    condition = "tenant = :tenant"
    values = {":tenant": {"S": tenant}}
    prefix = ""
    if deployment_id is not None:
        prefix = (
            f"{deployment_id}#"
            if connection_type is None
            else f"{deployment_id}#{connection_type}#"
        )
        condition += f" AND begins_with({SCOPE_KEY}, :prefix)"
        values[":prefix"] = {"S": prefix}
    start = decode_cursor(cursor, TENANT_INDEX, ("tenant", tenant), prefix) if cursor else None
    return _live_page(
        table,
        TENANT_INDEX,
        condition,
        values,
        limit=limit,
        start=start,
        clock=clock,
        written_off=written_off,
    )


def instance_page(
    table: Table,
    instance_id: str,
    *,
    limit: int,
    cursor: str | None,
    clock: Clock,
    written_off: frozenset[str],
) -> Page:
    """Live connections held by one server process, in pages (connection id order).

    Raises:
        InvalidCursor: a cursor not issued for this instance.
    """
    start = (
        decode_cursor(cursor, INSTANCE_INDEX, ("instance_id", instance_id), "") if cursor else None
    )
    return _live_page(
        table,
        INSTANCE_INDEX,
        "instance_id = :instance",
        {":instance": {"S": instance_id}},
        limit=limit,
        start=start,
        clock=clock,
        written_off=written_off,
    )


def for_instance(
    table: Table, instance_id: str, *, include_expired: bool, clock: Clock
) -> Iterator[Connection]:
    """Every connection recorded as held by one server process, read lazily page by page.

    `clock` is read at each page, as a long listing may outlive some items.
    """
    kwargs = {
        "IndexName": INSTANCE_INDEX,
        "KeyConditionExpression": "instance_id = :instance",
        "ExpressionAttributeValues": {":instance": {"S": instance_id}},
    }
    while True:
        response = table.api_call("query", **kwargs)
        now = clock()
        for item in response.get("Items", []):
            connection = from_item(item)
            if include_expired or not connection.is_expired(now):
                yield connection
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def counts(
    table: Table, *, tenant: str | None, clock: Clock, written_off: frozenset[str]
) -> dict[str, dict[str, dict[str, int]]]:
    """Live connections counted as {tenant: {deployment_id: {connection_type: n}}}.

    For one tenant this is a Query of its index partition. For every tenant it is the
    registry's one Scan (DynamoDB cannot list an index's partition keys): it reads the
    whole table, projected to four attributes, so keep it to operator overviews.
    Connections of `written_off` instances are not counted.
    """
    now = str(math.ceil(clock()))
    kwargs = {
        "ProjectionExpression": "tenant, deployment_id, connection_type, instance_id",
        "FilterExpression": "#ttl >= :now",
        "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
        "ExpressionAttributeValues": {":now": {"N": now}},
    }
    operation = "scan"
    if tenant is not None:
        operation = "query"
        kwargs.update(IndexName=TENANT_INDEX, KeyConditionExpression="tenant = :tenant")
        kwargs["ExpressionAttributeValues"][":tenant"] = {"S": tenant}
    found: dict[str, dict[str, dict[str, int]]] = {}
    while True:
        response = table.api_call(operation, **kwargs)
        for item in response.get("Items", []):
            if "deployment_id" not in item:
                continue  # not a connection (a lease, a quota counter, the original server's)
            if item.get("instance_id", {}).get("S") in written_off:
                continue
            types = found.setdefault(item["tenant"]["S"], {}).setdefault(
                item["deployment_id"]["S"], {}
            )
            kind = item["connection_type"]["S"]
            types[kind] = types.get(kind, 0) + 1
        if "LastEvaluatedKey" not in response:
            return found
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def expired_ids(table: Table, *, clock: Clock) -> Iterator[str]:
    """Ids of items past their TTL that DynamoDB has not deleted yet (a Scan)."""
    kwargs = {
        "ProjectionExpression": "connection_id",
        "FilterExpression": "#ttl < :now",
        "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
        "ExpressionAttributeValues": {":now": {"N": str(math.ceil(clock()))}},
    }
    while True:
        response = table.api_call("scan", **kwargs)
        for item in response.get("Items", []):
            yield item["connection_id"]["S"]
        if "LastEvaluatedKey" not in response:
            return
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _live_page(
    table: Table,
    index: str,
    condition: str,
    values: dict,
    *,
    limit: int,
    start: dict | None,
    clock: Clock,
    written_off: frozenset[str],
) -> Page:
    # ttl >= ceil(now) is exactly `not Connection.is_expired(now)` for a fractional now.
    values = {**values, ":now": {"N": str(math.ceil(clock()))}}
    found: list[Connection] = []
    while True:
        kwargs = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "FilterExpression": "#ttl >= :now",
            "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
            "ExpressionAttributeValues": values,
            "Limit": limit - len(found),
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = table.api_call("query", **kwargs)
        found.extend(
            connection
            for connection in map(from_item, response.get("Items", []))
            if connection.instance_id not in written_off
        )
        start = response.get("LastEvaluatedKey")
        # The filter runs after Limit: keep reading until the page is full or data ends.
        if not start or len(found) >= limit:
            break
    return Page(found, encode_cursor(index, start) if start else None)
