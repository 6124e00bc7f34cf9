"""The table itself: create it as schema.py defines it, or bring an existing one up to it.

`create_ws_table` and the development server's start call `create_table`; infrastructure
code (CloudFormation) creates the same table from the same schema.
"""

import time

from botocore.exceptions import ClientError

from realtime.registry.base import TableReport
from realtime.registry.dynamodb.client import Table
from realtime.registry.dynamodb.schema import (
    ATTRIBUTE_DEFINITIONS,
    BILLING_MODE,
    GLOBAL_SECONDARY_INDEXES,
    KEY_SCHEMA,
    TTL_ATTRIBUTE,
)
from realtime.registry.errors import RegistryError, RegistryUnavailable

__all__ = ["create_table", "describe_table"]


def create_table(table: Table, *, wait: bool, wait_seconds: float) -> TableReport:
    """Create the table, its indexes and TTL; on an existing table add what is missing.

    Idempotent. Index creation on an existing table waits for each index, as DynamoDB
    builds one at a time.

    Raises:
        RegistryError: the table exists with another key schema, or TTL on another attribute.
        RegistryUnavailable: DynamoDB cannot be reached or refuses the call.
    """
    report = TableReport(table.name)
    description = describe_table(table)
    if description is None:
        try:
            _create(table)
            report.created = True
        except RegistryUnavailable as exc:
            if exc.reason != "ResourceInUseException":
                raise
            # Another process created it since our describe (which may lag behind a
            # CreateTable): check it as an existing table.
            description = describe_table(table) or _wait_active(table, wait_seconds)
    if report.created:
        description = _wait_active(table, wait_seconds) if wait else describe_table(table)
    else:
        keys = [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]]
        if keys != [(k["AttributeName"], k["KeyType"]) for k in KEY_SCHEMA]:
            raise RegistryError(
                f"table {table.name} exists with key schema {keys}, "
                "expected connection_id as its only (hash) key"
            )
        existing = {i["IndexName"] for i in description.get("GlobalSecondaryIndexes", [])}
        for index in GLOBAL_SECONDARY_INDEXES:
            if index["IndexName"] not in existing:
                _wait_active(table, wait_seconds)
                table.api_call(
                    "update_table",
                    AttributeDefinitions=ATTRIBUTE_DEFINITIONS,
                    GlobalSecondaryIndexUpdates=[{"Create": index}],
                )
                report.indexes_created.append(index["IndexName"])
        if wait:  # also an existing table that is still CREATING or UPDATING
            description = _wait_active(table, wait_seconds)
        elif report.indexes_created:
            description = describe_table(table)
    report.status = description["TableStatus"] if description else "UNKNOWN"
    report.ttl_enabled_now = _ensure_ttl(table)
    return report


def describe_table(table: Table) -> dict | None:
    """The table's description, or None when it does not exist."""
    try:
        return table.api_call("describe_table")["Table"]
    except RegistryUnavailable as exc:
        if (
            isinstance(exc.__cause__, ClientError)
            and exc.__cause__.response["Error"]["Code"] == "ResourceNotFoundException"
        ):
            return None
        raise


def _create(table: Table) -> None:
    table.api_call(
        "create_table",
        AttributeDefinitions=ATTRIBUTE_DEFINITIONS,
        KeySchema=KEY_SCHEMA,
        GlobalSecondaryIndexes=GLOBAL_SECONDARY_INDEXES,
        BillingMode=BILLING_MODE,
    )


def _wait_active(table: Table, wait_seconds: float) -> dict:
    """The description once the table and every index are ACTIVE, polled each second.

    Raises:
        RegistryUnavailable: still not active after `wait_seconds`.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        description = describe_table(table)
        indexes = (description or {}).get("GlobalSecondaryIndexes", [])
        if (
            description
            and description["TableStatus"] == "ACTIVE"
            and all(i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes)
        ):
            return description
        if time.monotonic() > deadline:
            raise RegistryUnavailable(f"table {table.name} not active after {wait_seconds:.0f}s")
        time.sleep(1)


def _ensure_ttl(table: Table) -> bool:
    """Enable TTL on `ttl` if it is off. Returns True when this call enabled it."""
    status = table.api_call("describe_time_to_live")["TimeToLiveDescription"]
    if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        if status.get("AttributeName") != TTL_ATTRIBUTE:
            # DynamoDB allows one TTL attribute: items would never expire on `ttl`.
            raise RegistryError(
                f"table {table.name} has TTL on attribute "
                f"{status.get('AttributeName')!r}, expected 'ttl'"
            )
        return False
    table.api_call(
        "update_time_to_live",
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return True
