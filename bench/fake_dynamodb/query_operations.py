"""Query (on a table or a global secondary index) and Scan: key conditions turned into bounds
in sorted entries, ExclusiveStartKey, Limit, the 1 MB page, filters and projections."""

import bisect
import operator
from typing import TYPE_CHECKING

from bench.fake_dynamodb.errors import DynamoError, invalid, unsupported
from bench.fake_dynamodb.expression_compiler import resolve
from bench.fake_dynamodb.expressions import projector, request_expressions
from bench.fake_dynamodb.tables import Index, Table
from bench.fake_dynamodb.values import item_size, scalar

if TYPE_CHECKING:
    from bench.fake_dynamodb.service import FakeDynamoDB

_PAGE_BYTES = 1024 * 1024  # Query and Scan stop after about 1 MB read
_FIRST = operator.itemgetter(0)


def query(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    if "KeyConditionExpression" not in request:
        raise invalid("Query needs a KeyConditionExpression (KeyConditions is not supported)")
    parsed, names, values = request_expressions(
        request,
        key=request["KeyConditionExpression"],
        filter=request.get("FilterExpression"),
        projection=request.get("ProjectionExpression"),
    )
    index = None
    if request.get("IndexName") is not None:
        index = table.indexes.get(request["IndexName"])
        if index is None:
            raise invalid(
                "The table does not have the specified index: " + str(request["IndexName"])
            )
        if request.get("ConsistentRead"):
            raise invalid("Consistent reads are not supported on global secondary indexes")
        hash_name, range_name = index.hash_name, index.range_name
        hash_type, range_type = index.hash_type, index.range_type
    else:
        hash_name, range_name = table.hash_name, table.range_name
        hash_type = table.key_types[0]
        range_type = table.key_types[1] if range_name else None
    partition, low, high, in_range = _key_condition(
        parsed["key"].tree, names, values, hash_name, hash_type, range_name, range_type
    )
    if index is not None:
        entries = index.partitions.get(partition, [])
    else:
        entries = sorted(
            (key[1] if len(key) == 2 else None, key) for key in table.items if key[0] == partition
        )
    lo = 0 if low is None else low(entries)
    hi = len(entries) if high is None else high(entries)
    forward = request.get("ScanIndexForward", True)
    start = request.get("ExclusiveStartKey")
    if start is not None:
        start_key = _start_key(table, index, start)
        start_partition, start_sort = start_key[0], start_key[1]
        if start_partition != partition or (
            start_sort[0] is not None and not in_range(start_sort[0])
        ):
            raise invalid(
                "The provided starting key is outside query boundaries based on provided conditions"
            )
        if forward:
            lo = max(lo, bisect.bisect_right(entries, start_sort))
        else:
            hi = min(hi, bisect.bisect_left(entries, start_sort))
    positions = range(lo, hi) if forward else range(hi - 1, lo - 1, -1)
    return _read(
        request,
        table,
        index,
        (table.items[entries[i][1]] for i in positions),
        parsed,
        names,
        values,
    )


def scan(service: "FakeDynamoDB", request: dict) -> dict:
    table = service.table(request.get("TableName"))
    if "Segment" in request or "TotalSegments" in request:
        raise unsupported("Parallel Scan (Segment, TotalSegments)")
    parsed, names, values = request_expressions(
        request,
        filter=request.get("FilterExpression"),
        projection=request.get("ProjectionExpression"),
    )
    index = None
    if request.get("IndexName") is not None:
        index = table.indexes.get(request["IndexName"])
        if index is None:
            raise invalid(
                "The table does not have the specified index: " + str(request["IndexName"])
            )
    keys = sorted(index.placed if index is not None else table.items)
    start = request.get("ExclusiveStartKey")
    position = 0
    if start is not None:
        start_key = _start_key(table, index, start)
        position = bisect.bisect_right(keys, start_key[1][1])
    return _read(
        request,
        table,
        index,
        (table.items[keys[i]] for i in range(position, len(keys))),
        parsed,
        names,
        values,
    )


def _read(request, table, index, items, parsed, names, values) -> dict:
    """Read items in order up to Limit or 1 MB, then filter, project and page."""
    limit = request.get("Limit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise invalid("Limit must be at least 1")
    select = request.get("Select")
    projection = projector(parsed.get("projection"), names)
    if select == "COUNT" and projection is not None:
        raise invalid("Cannot specify the ProjectionExpression when choosing to get COUNT")
    if select == "SPECIFIC_ATTRIBUTES" and projection is None:
        raise invalid("SPECIFIC_ATTRIBUTES needs a ProjectionExpression")
    keep = parsed["filter"].fn if "filter" in parsed else None
    found, count, scanned, size, last = [], 0, 0, 0, None
    for item in items:
        scanned += 1
        size += item_size(item)
        view = item if index is None else index.project(item)  # all an index query sees
        if keep is None or keep(view, names, values):
            count += 1
            if select != "COUNT":
                found.append(projection(view) if projection else view)
        if scanned == limit or size >= _PAGE_BYTES:
            # DynamoDB stops here and names the last item read, even if it was the last.
            last = table.key_attributes(item, index)
            break
    answer = {"Count": count, "ScannedCount": scanned}
    if select != "COUNT":
        answer["Items"] = found
    if last is not None:
        answer["LastEvaluatedKey"] = last
    return answer


def _start_key(table: Table, index: Index | None, start) -> tuple:
    """(partition, entry) of an ExclusiveStartKey: entry is (sort value, table key)."""
    names = set(table.key_names)
    if index is not None:
        names |= {index.hash_name, index.range_name} - {None}
    if not isinstance(start, dict) or start.keys() != names:
        raise invalid(
            "The provided starting key is invalid: The provided key element does not match "
            "the schema"
        )
    key = table.key({name: start[name] for name in table.key_names})
    if index is None:
        return key[0], (key[1] if len(key) == 2 else None, key)
    try:
        entry = index.entry(key, start)
    except DynamoError:
        entry = None
    if entry is None:
        raise invalid(
            "The provided starting key is invalid: The provided key element does not match "
            "the schema"
        )
    return entry


def _key_condition(tree, names, values, hash_name, hash_type, range_name, range_type):
    """(partition value, low, high, in_range) of a KeyConditionExpression.

    low/high find the bounds of the range condition in a sorted entry list (None: open);
    in_range tells whether a sort value satisfies it.
    """
    terms = [tree[1], tree[2]] if tree[0] == "and" else [tree]
    partition = None
    low = high = None
    in_range = None
    for term in terms:
        kind = term[0]
        if kind in ("or", "not", "and", "in"):
            raise invalid(f"Invalid operator used in KeyConditionExpression: {kind.upper()}")
        if kind == "cmp":
            op, path, args = term[1], term[2], [term[3]]
        elif kind == "between":
            op, path, args = "between", term[1], [term[2], term[3]]
        else:
            op, path, args = term[1], term[2][0], term[2][1:]
        if path[0] != "path" or op not in _KEY_OPERATORS or any(a[0] != "value" for a in args):
            raise invalid(f"Query key condition not supported: {op}")
        name = resolve(path, names)
        if name == hash_name and op == "=" and partition is None:
            partition = _key_value(values[args[0][1]], hash_type)
            continue
        if name != range_name or in_range is not None:
            raise invalid("Query key condition not supported")
        bounds = [_key_value(values[arg[1]], range_type) for arg in args]
        low, high, in_range = _range(op, bounds, range_type)
    if partition is None:
        raise invalid(f"Query condition missed key schema element: {hash_name}")
    return partition, low, high, in_range or (lambda sort: True)


_KEY_OPERATORS = {"=", "<", "<=", ">", ">=", "between", "begins_with"}


def _key_value(av, kind):
    if av is None or kind not in av or len(av) != 1:
        raise invalid(
            "One or more parameter values were invalid: Condition parameter type does not "
            "match schema type"
        )
    return scalar(kind, av[kind])


def _range(op: str, bounds: list, kind: str):
    def left(value):
        return lambda entries: bisect.bisect_left(entries, value, key=_FIRST)

    def right(value):
        return lambda entries: bisect.bisect_right(entries, value, key=_FIRST)

    first = bounds[0]
    if op == "=":
        return left(first), right(first), lambda s: s == first
    if op == "<":
        return None, left(first), lambda s: s < first
    if op == "<=":
        return None, right(first), lambda s: s <= first
    if op == ">":
        return right(first), None, lambda s: s > first
    if op == ">=":
        return left(first), None, lambda s: s >= first
    if op == "between":
        last = bounds[1]
        if first > last:
            raise invalid(
                "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to "
                "be greater than or equal to lower bound"
            )
        return left(first), right(last), lambda s: first <= s <= last
    if op == "begins_with":
        if kind == "N":
            raise invalid(
                "Invalid KeyConditionExpression: Incorrect operand type for operator or "
                "function; operator or function: begins_with, operand type: N"
            )
        after = _successor(first)
        return left(first), None if after is None else left(after), lambda s: s.startswith(first)
    raise invalid(f"Query key condition not supported: {op}")


def _successor(prefix):
    """The smallest value greater than every value that starts with `prefix` (None: none)."""
    while prefix:
        last = prefix[-1]
        if isinstance(prefix, bytes):
            if last < 0xFF:
                return prefix[:-1] + bytes([last + 1])
        elif ord(last) < 0x10FFFF:
            return prefix[:-1] + chr(ord(last) + 1)
        prefix = prefix[:-1]
    return None


OPERATIONS = {"Query": query, "Scan": scan}
