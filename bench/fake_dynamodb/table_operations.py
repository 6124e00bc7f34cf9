"""The control plane: CreateTable, DescribeTable, UpdateTable (GSI create and delete),
DeleteTable, ListTables, DescribeTimeToLive and UpdateTimeToLive."""

from typing import TYPE_CHECKING

from bench.fake_dynamodb.errors import DynamoError, invalid
from bench.fake_dynamodb.tables import Table

if TYPE_CHECKING:
    from bench.fake_dynamodb.service import FakeDynamoDB


def create_table(service: "FakeDynamoDB", request: dict) -> dict:
    name = request.get("TableName")
    if not isinstance(name, str) or not name:
        raise invalid("TableName is required")
    if name in service.tables:
        raise DynamoError("ResourceInUseException", f"Table already exists: {name}")
    table = service.tables[name] = Table(request)
    return {"TableDescription": table.description()}


def describe_table(service: "FakeDynamoDB", request: dict) -> dict:
    return {"Table": service.table(request.get("TableName")).description()}


def update_table(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    updates = request.get("GlobalSecondaryIndexUpdates") or []
    types = dict(table.attribute_types)
    for definition in request.get("AttributeDefinitions") or []:
        types[definition.get("AttributeName")] = definition.get("AttributeType")
    saved = table.attribute_types
    table.attribute_types = types
    try:
        for update in updates:
            if "Create" in update:
                table.add_index(update["Create"])
            elif "Delete" in update:
                table.drop_index(update["Delete"].get("IndexName"))
    except DynamoError:
        table.attribute_types = saved
        raise
    known = {d.get("AttributeName") for d in table.attribute_definitions}
    for definition in request.get("AttributeDefinitions") or []:
        if definition.get("AttributeName") not in known:
            table.attribute_definitions = [*table.attribute_definitions, definition]
    if "BillingMode" in request:
        table.billing_mode = request["BillingMode"]
    if "ProvisionedThroughput" in request:
        table.throughput = request["ProvisionedThroughput"]
    return {"TableDescription": table.description()}


def delete_table(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    del service.tables[table.name]
    return {"TableDescription": table.description("DELETING")}


def list_tables(service: "FakeDynamoDB", request: dict) -> dict:
    names = sorted(service.tables)
    start = request.get("ExclusiveStartTableName")
    if start:
        names = [name for name in names if name > start]
    limit = request.get("Limit") or 100
    answer = {"TableNames": names[:limit]}
    if len(names) > limit:
        answer["LastEvaluatedTableName"] = names[limit - 1]
    return answer


def describe_time_to_live(service: "FakeDynamoDB", request: dict) -> dict:
    return {"TimeToLiveDescription": dict(service.table(request.get("TableName")).ttl)}


def update_time_to_live(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    spec = request.get("TimeToLiveSpecification") or {}
    enabled = spec.get("Enabled")
    attribute = spec.get("AttributeName")
    if not isinstance(enabled, bool) or not attribute:
        raise invalid("TimeToLiveSpecification needs Enabled and AttributeName")
    if enabled == (table.ttl["TimeToLiveStatus"] == "ENABLED"):
        raise invalid(f"TimeToLive is already {'enabled' if enabled else 'disabled'}")
    if enabled:
        table.ttl = {"TimeToLiveStatus": "ENABLED", "AttributeName": attribute}
    else:
        table.ttl = {"TimeToLiveStatus": "DISABLED"}
    return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}


OPERATIONS = {
    "CreateTable": create_table,
    "DescribeTable": describe_table,
    "UpdateTable": update_table,
    "DeleteTable": delete_table,
    "ListTables": list_tables,
    "DescribeTimeToLive": describe_time_to_live,
    "UpdateTimeToLive": update_time_to_live,
}
