"""Per-tenant quota: a counter item per tenant, moved in transactions with the items.

With `tenant_limit` set, a registration is one TransactWriteItems of the item and its
tenant's counter, so that instances racing for the last slot cannot both win it; a
deregistration counts down only what it really deleted. docs/registry.md ("Per-tenant
quota") explains the counter's drift and the recount that corrects it.
"""

import contextlib
import logging
import random
import time

from botocore.exceptions import ClientError

from realtime.core.connection import Connection
from realtime.core.logs import event
from realtime.registry.dynamodb.client import Table, error_code
from realtime.registry.dynamodb.codec import to_item
from realtime.registry.errors import QuotaExceeded, RegistryError, RegistryUnavailable

__all__ = ["lower_quota", "quota_key", "quota_state", "register_within_quota", "release_quota"]

# The backend's one logger: operators filter its events by the package's name.
logger = logging.getLogger(__package__)

# A tenant's counter of open connections. Tenants cannot contain "#" and connection ids are
# uuids, so these keys never meet a connection's; the items carry no `tenant` attribute, so
# no index and no count sees them.
_QUOTA_KEY = "quota#{tenant}"
_QUOTA_COUNT = "open_connections"
_QUOTA_VERSION = "version"
_QUOTA_NAMES = {"#n": _QUOTA_COUNT, "#v": _QUOTA_VERSION}
_BUMP_VERSION = "#v = if_not_exists(#v, :zero) + :one"
_TRANSACTION_ATTEMPTS = 5


def quota_key(tenant: str) -> dict:
    """The key of a tenant's counter item."""
    return {"connection_id": {"S": _QUOTA_KEY.format(tenant=tenant)}}


def register_within_quota(table: Table, connection: Connection, *, limit: int) -> None:
    """Write a new connection's item and count it, if its tenant has fewer than `limit`.

    Raises:
        QuotaExceeded: the tenant is at its limit; nothing was written.
        RegistryError: the id is already taken by another record.
        RegistryUnavailable: DynamoDB failed, or other registrations of the tenant kept
            winning the counter (TransactionConflict) for every attempt.
    """
    item = to_item(connection)
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            table.api_call(
                "transact_write_items",
                with_table=False,
                TransactItems=[
                    {"Update": _counted_up(table, connection.tenant, limit)},
                    {
                        "Put": {
                            "TableName": table.name,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(connection_id)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                ],
            )
            return
        except ClientError as exc:
            (quota, put), existing = _cancellation_codes(exc), _cancelled_item(exc, 1)
        if put == "ConditionalCheckFailed":
            if existing == item:
                return  # a retry of our own transaction, whose first attempt landed
            raise RegistryError(f"connection id {connection.connection_id} exists")
        if quota == "ConditionalCheckFailed":
            raise QuotaExceeded(f"tenant {connection.tenant} has its {limit} connections open")
        # TransactionConflict: another registration of the tenant went first.
        time.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise RegistryUnavailable(
        "DynamoDB transact_write_items failed: TransactionConflict", reason="conflict"
    )


def quota_state(table: Table, tenant: str) -> tuple[int, int]:
    """A tenant's counter as (open connections counted, version); (0, 0) when absent.

    The version changes with every write to the counter.
    """
    item = table.api_call("get_item", Key=quota_key(tenant), ConsistentRead=True).get("Item", {})
    return (
        int(item.get(_QUOTA_COUNT, {}).get("N", "0")),
        int(item.get(_QUOTA_VERSION, {}).get("N", "0")),
    )


def lower_quota(table: Table, tenant: str, *, to: int, version: int) -> bool:
    """Set a tenant's counter to `to` if it was not written since `version` was read and
    counts more. Returns whether it was set."""
    try:
        _set_counter(
            table,
            tenant,
            ":to",
            condition="#v = :version AND #n > :to",
            values={":to": {"N": str(to)}, ":version": {"N": str(version)}},
        )
    except ClientError:
        return False
    return True


def release_quota(table: Table, tenant: str, count: int) -> None:
    """Count `count` deleted connections down from the tenant's counter (never below 0).

    A failure is logged, not raised: the items are gone, and the counter, counted too high,
    is lowered by the next recount.
    """
    try:
        try:
            _set_counter(
                table,
                tenant,
                "#n - :k",
                condition="#n >= :k",
                values={":k": {"N": str(count)}},
            )
        except ClientError:
            # Drifted below: floor at zero. A missing counter stays missing.
            with contextlib.suppress(ClientError):
                _set_counter(table, tenant, ":zero", condition="attribute_exists(#n)", values={})
    except RegistryUnavailable as exc:
        # Counted too high until a recount lowers it; the item itself is gone.
        logger.warning(event("registry.quota_release_failed", tenant=tenant, error=exc))


def _set_counter(table: Table, tenant: str, count: str, *, condition: str, values: dict) -> None:
    """Set a tenant's counter to the expression `count` if `condition` holds, and move its
    version. `values` are the expressions' values besides :zero and :one.

    Raises:
        ClientError: the condition did not hold (nothing was written).
    """
    table.api_call(
        "update_item",
        Key=quota_key(tenant),
        UpdateExpression=f"SET #n = {count}, {_BUMP_VERSION}",
        ConditionExpression=condition,
        ExpressionAttributeNames=_QUOTA_NAMES,
        ExpressionAttributeValues={**values, ":zero": {"N": "0"}, ":one": {"N": "1"}},
    )


def _counted_up(table: Table, tenant: str, limit: int) -> dict:
    """The transaction's update of the counter: one up, only while under `limit`."""
    return {
        "TableName": table.name,
        "Key": quota_key(tenant),
        "UpdateExpression": f"SET #n = if_not_exists(#n, :zero) + :one, {_BUMP_VERSION}",
        "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
        "ExpressionAttributeNames": _QUOTA_NAMES,
        "ExpressionAttributeValues": {
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":limit": {"N": str(limit)},
        },
    }


def _cancellation_codes(exc: ClientError) -> list[str]:
    """The per-action codes of a cancelled transaction ("None" for actions that were fine)."""
    if error_code(exc) != "TransactionCanceledException":
        raise exc
    return [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]


def _cancelled_item(exc: ClientError, action: int) -> dict | None:
    """The item an action of a cancelled transaction found (ReturnValuesOnConditionCheckFailure)."""
    reasons = exc.response.get("CancellationReasons", [])
    return reasons[action].get("Item") if action < len(reasons) else None
