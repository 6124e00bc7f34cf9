"""Writes and reads of items by key: PutItem, UpdateItem, DeleteItem, GetItem, BatchWriteItem
and TransactWriteItems, with their conditions and ReturnValues.

Each call runs to its end without yielding to the event loop, so every conditional write and
every transaction is atomic, as in DynamoDB.
"""

from typing import TYPE_CHECKING

from bench.fake_dynamodb.errors import DynamoError, invalid
from bench.fake_dynamodb.expressions import projector, request_expressions

if TYPE_CHECKING:
    from bench.fake_dynamodb.service import FakeDynamoDB

_BATCH_LIMIT = 25
_TRANSACTION_LIMIT = 100


def _condition_holds(parsed: dict, old: dict | None, names: dict, values: dict) -> bool:
    """Whether the request's ConditionExpression (if any) holds for the item as it is."""
    condition = parsed.get("condition")
    return condition is None or condition.fn(old or {}, names, values)


def _require_condition(parsed: dict, old: dict | None, names: dict, values: dict, request: dict):
    if not _condition_holds(parsed, old, names, values):
        raise _condition_failed(old, request)


def _condition_failed(old: dict | None, request: dict) -> DynamoError:
    extra = {}
    if old is not None and request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD":
        extra["Item"] = old
    return DynamoError("ConditionalCheckFailedException", "The conditional request failed", **extra)


def put_item(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    item = request.get("Item")
    key = table.item_key(item)
    parsed, names, values = request_expressions(
        request, condition=request.get("ConditionExpression")
    )
    old = table.items.get(key)
    service.count_write(key)
    _require_condition(parsed, old, names, values, request)
    table.write(key, item)
    return _returned(request, old, item, None, allowed=("NONE", "ALL_OLD"))


def update_item(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    key_value = request.get("Key")
    key = table.key(key_value)
    parsed, names, values = request_expressions(
        request,
        update=request.get("UpdateExpression"),
        condition=request.get("ConditionExpression"),
    )
    old = table.items.get(key)
    service.count_write(key)
    _require_condition(parsed, old, names, values, request)
    update = parsed.get("update")
    if update is None:
        new, touched = dict(old or key_value), []
    else:
        new, touched = update.fn(old or key_value, names, values)
        for name in touched:
            if name in table.key_names:
                raise invalid(
                    f"One or more parameter values were invalid: Cannot update attribute "
                    f"{name}. This attribute is part of the key"
                )
        table.check_index_keys(new)
    table.write(key, new, touched if old is not None else None)
    return _returned(
        request,
        old,
        new,
        touched,
        allowed=("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"),
    )


def delete_item(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    key = table.key(request.get("Key"))
    parsed, names, values = request_expressions(
        request, condition=request.get("ConditionExpression")
    )
    old = table.items.get(key)
    service.count_write(key)
    _require_condition(parsed, old, names, values, request)
    table.write(key, None)
    return _returned(request, old, None, None, allowed=("NONE", "ALL_OLD"))


def get_item(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    key = table.key(request.get("Key"))
    parsed, names, _ = request_expressions(request, projection=request.get("ProjectionExpression"))
    item = table.items.get(key)
    if item is None:
        return {}
    project = projector(parsed.get("projection"), names)
    return {"Item": project(item) if project else item}


# many items


def batch_write_item(service: "FakeDynamoDB", request: dict) -> dict:
    batches = request.get("RequestItems")
    if not isinstance(batches, dict) or not batches:
        raise invalid("RequestItems must name at least one table")
    writes = []
    for name, requests in batches.items():
        table = service.table(name)
        seen = set()
        for entry in requests:
            if "PutRequest" in entry:
                item = entry["PutRequest"].get("Item")
                key = table.item_key(item)
            elif "DeleteRequest" in entry:
                item = None
                key = table.key(entry["DeleteRequest"].get("Key"))
            else:
                raise invalid("A WriteRequest needs a PutRequest or a DeleteRequest")
            if key in seen:
                raise invalid("Provided list of item keys contains duplicates")
            seen.add(key)
            writes.append((table, key, item))
    if len(writes) > _BATCH_LIMIT:
        raise invalid(
            "1 validation error detected: Value at 'requestItems' failed to satisfy "
            "constraint: Map value must satisfy constraint: [Member must have length less "
            f"than or equal to {_BATCH_LIMIT}, Member must have length greater than or "
            "equal to 1]"
        )
    for table, key, item in writes:
        table.write(key, item)
    service.item_writes += len(writes)
    return {"UnprocessedItems": {}}


def transact_write_items(service: "FakeDynamoDB", request: dict) -> dict:
    actions = request.get("TransactItems")
    if not isinstance(actions, list) or not 1 <= len(actions) <= _TRANSACTION_LIMIT:
        raise invalid(f"TransactItems must hold 1 to {_TRANSACTION_LIMIT} actions")
    prepared = []
    keys = set()
    for action in actions:
        if not isinstance(action, dict) or len(action) != 1:
            raise invalid("A TransactWriteItem holds exactly one action")
        kind, spec = next(iter(action.items()))
        if kind not in ("Put", "Update", "Delete", "ConditionCheck"):
            raise invalid(f"Unknown transaction action {kind}")
        table = service.table(spec.get("TableName"))
        key = table.item_key(spec.get("Item")) if kind == "Put" else table.key(spec.get("Key"))
        if (table.name, key) in keys:
            raise invalid("Transaction request cannot include multiple operations on one item")
        keys.add((table.name, key))
        if kind == "ConditionCheck" and not spec.get("ConditionExpression"):
            raise invalid("A ConditionCheck needs a ConditionExpression")
        parsed, names, values = request_expressions(
            spec,
            update=spec.get("UpdateExpression") if kind == "Update" else None,
            condition=spec.get("ConditionExpression"),
        )
        if kind == "Update" and "update" not in parsed:
            raise invalid("An Update action needs an UpdateExpression")
        prepared.append((kind, spec, table, key, parsed, names, values))
    # Every condition reads the items as they were before the transaction.
    reasons, results, failed = [], [], False
    for kind, spec, table, key, parsed, names, values in prepared:
        old = table.items.get(key)
        try:
            if not _condition_holds(parsed, old, names, values):
                reason = {"Code": "ConditionalCheckFailed"}
                reason["Message"] = "The conditional request failed"
                if old is not None and spec.get("ReturnValuesOnConditionCheckFailure") == (
                    "ALL_OLD"
                ):
                    reason["Item"] = old
                reasons.append(reason)
                failed = True
                continue
            if kind == "Put":
                results.append((table, key, spec["Item"]))
            elif kind == "Delete":
                results.append((table, key, None))
            elif kind == "Update":
                new, touched = parsed["update"].fn(old or spec["Key"], names, values)
                if set(touched) & set(table.key_names):
                    raise invalid("Cannot update attribute: it is part of the key")
                table.check_index_keys(new)
                results.append((table, key, new))
        except DynamoError as exc:
            if exc.code != "ValidationException":
                raise
            reasons.append({"Code": "ValidationError", "Message": exc.message})
            failed = True
            continue
        reasons.append({"Code": "None"})
    service.item_writes += sum(1 for p in prepared if p[0] != "ConditionCheck")
    if failed:
        codes = ", ".join(reason["Code"] for reason in reasons)
        raise DynamoError(
            "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{codes}]",
            CancellationReasons=reasons,
        )
    for table, key, item in results:
        table.write(key, item)
    return {}


def _returned(request, old, new, touched, *, allowed) -> dict:
    wanted = request.get("ReturnValues") or "NONE"
    if wanted not in allowed:
        raise invalid(f"ReturnValues {wanted} is not valid for this operation")
    if wanted == "ALL_OLD" and old is not None:
        return {"Attributes": old}
    if wanted == "ALL_NEW":
        return {"Attributes": new}
    if wanted == "UPDATED_NEW":
        return {"Attributes": {n: new[n] for n in touched if n in new}}
    if wanted == "UPDATED_OLD" and old is not None:
        return {"Attributes": {n: old[n] for n in touched if n in old}}
    return {}


OPERATIONS = {
    "PutItem": put_item,
    "GetItem": get_item,
    "UpdateItem": update_item,
    "DeleteItem": delete_item,
    "BatchWriteItem": batch_write_item,
    "TransactWriteItems": transact_write_items,
}
