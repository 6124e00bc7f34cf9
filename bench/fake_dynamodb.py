"""A DynamoDB-compatible HTTP endpoint that answers every call after a fixed latency.

    python -m bench.fake_dynamodb [--host 127.0.0.1] [--port 0] [--latency-ms 5]

Benchmarks point the server at it (DYNAMODB_ENDPOINT_URL) so that their figures measure the
server, not the emulator: moto's server handles one request at a time and saturates near 200
calls/s, this one overlaps requests (one asyncio loop, no thread per request) and sustains
thousands of calls/s. It prints `Running on http://<host>:<port>` once listening, like moto.

It speaks DynamoDB's JSON protocol (`POST /`, `X-Amz-Target: DynamoDB_20120810.<Operation>`,
SigV4 headers accepted and ignored) for what realtime/registry.py uses, on in-memory tables:
CreateTable, DescribeTable, UpdateTable (GSI create/delete), DeleteTable, ListTables,
DescribeTimeToLive, UpdateTimeToLive, PutItem, GetItem, UpdateItem, DeleteItem, BatchWriteItem,
TransactWriteItems, Query (table or GSI) and Scan. Expressions: conditions and filters with
= <> < <= > >=, BETWEEN, IN, AND/OR/NOT, parentheses, attribute_exists, attribute_not_exists
and begins_with; updates with SET (operands, `a + b`, `a - b`, if_not_exists) and REMOVE;
projections of top-level attributes. Anything else is refused with a ValidationException that
says so, never silently misread.

Each call is applied when it arrives (the loop is single-threaded, so every conditional write
and transaction is atomic, as in DynamoDB) and its answer is sent `--latency-ms` later.

Not DynamoDB: no TTL deletion (expired items stay until deleted, as they may in DynamoDB for
days), no throttling, no nested document paths, no reserved-word check, item sizes for the
1 MB page limit are estimates, and tables and indexes are ACTIVE at once.

Counters, answered at once (no latency): `GET /stats` -> {"calls": {"PutItem": n, ...},
"items": <items in all tables>, "item_writes": <items written or deleted, batches and
transactions counted per item>, "errors": {code: n}, "seconds": <since reset>,
"cpu_seconds": <process CPU since reset>, ...}; `POST /reset-stats` zeroes them.

    python -m bench.fake_dynamodb --measure [--latency-ms 5] [--connections 200] [--seconds 5]
        [--client raw|boto3]

starts the endpoint as a child process and drives it from this process (raw keep-alive HTTP
connections on asyncio, or boto3 clients on threads), then prints the calls/s it sustained.
"""

import argparse
import asyncio
import base64
import bisect
import contextlib
import json
import operator
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import Counter, deque
from decimal import Context, Decimal, InvalidOperation
from pathlib import Path

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
_ROOT = Path(__file__).resolve().parent.parent
_PAGE_BYTES = 1024 * 1024  # Query and Scan stop after about 1 MB read
_BATCH_LIMIT = 25
_TRANSACTION_LIMIT = 100
_NUMBERS = Context(prec=38)  # DynamoDB's precision
_REGION = "us-east-1"
_ACCOUNT = "123456789012"


# --- errors -----------------------------------------------------------------------


class DynamoError(Exception):
    """An error answer: HTTP 400 (or `status`) with DynamoDB's JSON error body."""

    _PREFIXES = {
        "ValidationException": "com.amazon.coral.validate#",
        "UnknownOperationException": "com.amazon.coral.service#",
        "SerializationException": "com.amazon.coral.service#",
    }

    def __init__(self, code: str, message: str, *, status: int = 400, **extra):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def body(self) -> dict:
        prefix = self._PREFIXES.get(self.code, "com.amazonaws.dynamodb.v20120810#")
        return {"__type": prefix + self.code, "message": self.message, **self.extra}


def invalid(message: str) -> DynamoError:
    return DynamoError("ValidationException", message)


def unsupported(what: str) -> DynamoError:
    return invalid(f"{what} is not supported by bench.fake_dynamodb")


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


# --- attribute values ---------------------------------------------------------------


def _typed(av) -> tuple[str, object]:
    """(type, raw wire value) of an attribute value such as {"S": "x"}."""
    if not isinstance(av, dict) or len(av) != 1:
        raise invalid(f"Supplied AttributeValue is not a single-typed value: {av!r}")
    return next(iter(av.items()))


def _number(raw) -> Decimal:
    try:
        return Decimal(raw)
    except (InvalidOperation, TypeError, ValueError):
        raise invalid(f"A value provided cannot be converted into a number: {raw!r}") from None


def _scalar(kind: str, raw):
    """The comparable Python value of a key type's wire value (S, N or B)."""
    if kind == "S":
        return raw
    if kind == "N":
        return _number(raw)
    return base64.b64decode(raw)


def _format_number(value: Decimal) -> str:
    text = format(value.normalize(_NUMBERS), "f")
    return "0" if text in ("-0", "") else text


def _equal(a, b) -> bool:
    if a is None or b is None:
        return False
    (ta, va), (tb, vb) = _typed(a), _typed(b)
    if ta != tb:
        return False
    if ta == "N":
        return _number(va) == _number(vb)
    if ta in ("SS", "BS"):
        return set(va) == set(vb)
    if ta == "NS":
        return {_number(v) for v in va} == {_number(v) for v in vb}
    return va == vb


def _ordered(a, b):
    """(x, y) comparable Python values of two attribute values, or None when incomparable."""
    if a is None or b is None:
        return None
    (ta, va), (tb, vb) = _typed(a), _typed(b)
    if ta != tb or ta not in ("S", "N", "B"):
        return None
    return _scalar(ta, va), _scalar(tb, vb)


def _compare(op):
    def compare(a, b) -> bool:
        pair = _ordered(a, b)
        return pair is not None and op(*pair)

    return compare


_COMPARISONS = {
    "=": _equal,
    # A missing attribute is "not equal" to anything (DynamoDB's reading of <>).
    "<>": lambda a, b: not _equal(a, b),
    "<": _compare(operator.lt),
    "<=": _compare(operator.le),
    ">": _compare(operator.gt),
    ">=": _compare(operator.ge),
}


def _item_size(item: dict) -> int:
    """An estimate of DynamoDB's item size (name bytes + value bytes), for the 1 MB pages."""
    size = 0
    for name, av in item.items():
        size += len(name)
        for kind, raw in av.items():
            if kind in ("S", "B"):
                size += len(raw)
            elif kind == "N":
                size += len(raw) // 2 + 1
            else:
                size += len(json.dumps(raw))
    return size


# --- expressions ------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><>|<=|>=|[=<>(),+\-\[\].]))"
)
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE"}
_CONDITION_FUNCTIONS = {"attribute_exists", "attribute_not_exists", "begins_with"}
_UNSUPPORTED_FUNCTIONS = {"contains", "size", "attribute_type", "list_append"}


class Expression:
    """A parsed expression: its tree, the placeholders it uses and, once compiled, `fn`."""

    __slots__ = ("fn", "names", "tree", "values")

    def __init__(self, tree, names: set[str], values: set[str]):
        self.tree = tree
        self.names = frozenset(names)
        self.values = frozenset(values)
        self.fn = None


class _Parser:
    """Recursive descent over DynamoDB's expression grammar (the subset named above).

    Trees are tuples: ("or"|"and", a, b), ("not", a), ("cmp", op, x, y), ("between", x, lo,
    hi), ("in", x, [ys]), ("func", name, [args]); operands ("path", token), ("value", token),
    ("+"|"-", a, b), ("if_not_exists", path, operand).
    """

    def __init__(self, text: str, what: str):
        if not isinstance(text, str) or not text.strip():
            raise invalid(f"Invalid {what}: The expression can not be empty;")
        self.text = text
        self.what = what
        self.tokens: list[tuple[str, str]] = []
        position, end = 0, len(text.rstrip())
        while position < end:
            match = _TOKEN.match(text, position)
            if not match:
                raise self.error(f'Syntax error; token: "{text[position:].strip()[:20]}"')
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.position = 0
        self.names: set[str] = set()
        self.values: set[str] = set()

    def error(self, message: str) -> DynamoError:
        return invalid(f"Invalid {self.what}: {message}")

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.position += 1
        return token

    def keyword(self, *words: str) -> bool:
        kind, text = self.peek()
        return kind == "word" and text.upper() in words

    def expect(self, text: str) -> None:
        kind, found = self.take()
        if found != text or kind not in ("op", "word"):
            raise self.error(f'Syntax error; expected "{text}", found "{found or "<end>"}"')

    def done(self) -> None:
        if self.position < len(self.tokens):
            raise self.error(f'Syntax error; token: "{self.peek()[1]}"')

    def expression(self, tree) -> Expression:
        self.done()
        return Expression(tree, self.names, self.values)

    # paths and operands

    def path(self):
        kind, text = self.take()
        if kind == "name":
            self.names.add(text)
        elif kind != "word" or text.upper() in _KEYWORDS:
            raise self.error(f'Syntax error; expected an attribute, found "{text or "<end>"}"')
        if self.peek()[1] in (".", "["):
            raise unsupported(f"Nested document path in {self.what}")
        return ("path", text)

    def operand(self):
        kind, text = self.peek()
        if kind == "value":
            self.take()
            self.values.add(text)
            return ("value", text)
        if kind == "word" and self.peek(1)[1] == "(":
            raise unsupported(f"Function {text} as an operand in {self.what}")
        return self.path()

    # conditions

    def condition(self):
        tree = self.conjunction()
        while self.keyword("OR"):
            self.take()
            tree = ("or", tree, self.conjunction())
        return tree

    def conjunction(self):
        tree = self.negation()
        while self.keyword("AND"):
            self.take()
            tree = ("and", tree, self.negation())
        return tree

    def negation(self):
        if self.keyword("NOT"):
            self.take()
            return ("not", self.negation())
        return self.atom()

    def atom(self):
        kind, text = self.peek()
        if text == "(" and kind == "op":
            self.take()
            tree = self.condition()
            self.expect(")")
            return tree
        if kind == "word" and self.peek(1)[1] == "(":
            return self.function()
        left = self.operand()
        kind, text = self.peek()
        if kind == "op" and text in _COMPARISONS:
            self.take()
            return ("cmp", text, left, self.operand())
        if self.keyword("BETWEEN"):
            self.take()
            low = self.operand()
            if not self.keyword("AND"):
                raise self.error("Syntax error; BETWEEN needs AND")
            self.take()
            return ("between", left, low, self.operand())
        if self.keyword("IN"):
            self.take()
            self.expect("(")
            options = [self.operand()]
            while self.peek()[1] == ",":
                self.take()
                options.append(self.operand())
            self.expect(")")
            return ("in", left, options)
        raise self.error(f'Syntax error; token: "{text or "<end>"}"')

    def function(self):
        _, name = self.take()
        if name in _UNSUPPORTED_FUNCTIONS:
            raise unsupported(f"Function {name}")
        if name not in _CONDITION_FUNCTIONS:
            raise self.error(f"Invalid function name; function: {name}")
        self.expect("(")
        args = [self.path()]
        if name == "begins_with":
            self.expect(",")
            args.append(self.operand())
        self.expect(")")
        return ("func", name, args)

    # updates

    def update(self):
        actions = []
        seen = set()
        while self.position < len(self.tokens):
            if not self.keyword("SET", "REMOVE", "ADD", "DELETE"):
                raise self.error(f'Syntax error; token: "{self.peek()[1]}"')
            clause = self.take()[1].upper()
            if clause in ("ADD", "DELETE"):
                raise unsupported(f"{clause} in an update expression")
            if clause in seen:
                raise self.error(f'The "{clause}" section can only be used once')
            seen.add(clause)
            while True:
                target = self.path()
                if clause == "SET":
                    self.expect("=")
                    actions.append(("set", target, self.update_value()))
                else:
                    actions.append(("remove", target))
                if self.peek()[1] != ",":
                    break
                self.take()
        return actions

    def update_value(self):
        left = self.update_operand()
        kind, text = self.peek()
        if kind == "op" and text in ("+", "-"):
            self.take()
            return (text, left, self.update_operand())
        return left

    def update_operand(self):
        kind, text = self.peek()
        if kind == "word" and self.peek(1)[1] == "(":
            if text != "if_not_exists":
                if text in _UNSUPPORTED_FUNCTIONS:
                    raise unsupported(f"Function {text}")
                raise self.error(f"Invalid function name; function: {text}")
            self.take()
            self.expect("(")
            path = self.path()
            self.expect(",")
            fallback = self.update_operand()
            self.expect(")")
            return ("if_not_exists", path, fallback)
        return self.operand()

    # projections

    def projection(self):
        paths = [self.path()]
        while self.peek()[1] == ",":
            self.take()
            paths.append(self.path())
        return paths


def _getter(node):
    """fn(item, names, values) -> attribute value or None, for a path or a value."""
    kind, token = node
    if kind == "value":
        return lambda item, names, values: values[token]
    if token[0] == "#":
        return lambda item, names, values: item.get(names[token])
    return lambda item, names, values: item.get(token)


def _resolve(path, names: dict) -> str:
    token = path[1]
    return names[token] if token[0] == "#" else token


def _compile_condition(tree):
    kind = tree[0]
    if kind in ("or", "and"):
        left, right = _compile_condition(tree[1]), _compile_condition(tree[2])
        if kind == "or":
            return lambda i, n, v: left(i, n, v) or right(i, n, v)
        return lambda i, n, v: left(i, n, v) and right(i, n, v)
    if kind == "not":
        inner = _compile_condition(tree[1])
        return lambda i, n, v: not inner(i, n, v)
    if kind == "cmp":
        compare, x, y = _COMPARISONS[tree[1]], _getter(tree[2]), _getter(tree[3])
        return lambda i, n, v: compare(x(i, n, v), y(i, n, v))
    if kind == "between":
        x, low, high = _getter(tree[1]), _getter(tree[2]), _getter(tree[3])
        ge, le = _COMPARISONS[">="], _COMPARISONS["<="]

        def between(i, n, v):
            value = x(i, n, v)
            return ge(value, low(i, n, v)) and le(value, high(i, n, v))

        return between
    if kind == "in":
        x, options = _getter(tree[1]), [_getter(o) for o in tree[2]]
        return lambda i, n, v: any(_equal(x(i, n, v), o(i, n, v)) for o in options)
    # functions
    name, args = tree[1], tree[2]
    target = _getter(args[0])
    if name == "attribute_exists":
        return lambda i, n, v: target(i, n, v) is not None
    if name == "attribute_not_exists":
        return lambda i, n, v: target(i, n, v) is None
    prefix = _getter(args[1])  # begins_with

    def begins_with(i, n, v):
        kind, start = _typed(prefix(i, n, v))
        if kind not in ("S", "B"):
            raise invalid(
                "Invalid ConditionExpression: Incorrect operand type for operator or function; "
                f"operator or function: begins_with, operand type: {kind}"
            )
        value = target(i, n, v)
        if value is None or kind not in value:
            return False
        if kind == "B":
            return base64.b64decode(value["B"]).startswith(base64.b64decode(start))
        return value["S"].startswith(start)

    return begins_with


def _update_operand(node):
    kind = node[0]
    if kind == "if_not_exists":
        current, fallback = _getter(node[1]), _update_operand(node[2])

        def if_not_exists(i, n, v):
            value = current(i, n, v)
            return fallback(i, n, v) if value is None else value

        return if_not_exists
    get = _getter(node)
    if kind == "value":
        return get

    def attribute(i, n, v):
        value = get(i, n, v)
        if value is None:
            raise invalid(
                "The provided expression refers to an attribute that does not exist in the item"
            )
        return value

    return attribute


def _update_value(node):
    if node[0] not in ("+", "-"):
        return _update_operand(node)
    left, right = _update_operand(node[1]), _update_operand(node[2])
    combine = _NUMBERS.add if node[0] == "+" else _NUMBERS.subtract

    def arithmetic(i, n, v):
        a, b = left(i, n, v), right(i, n, v)
        if "N" not in a or "N" not in b:
            raise invalid("An operand in the update expression has an incorrect data type")
        return {"N": _format_number(combine(_number(a["N"]), _number(b["N"])))}

    return arithmetic


def _compile_update(actions):
    steps = [
        (action[1], _update_value(action[2]) if action[0] == "set" else None) for action in actions
    ]

    def update(item: dict, names: dict, values: dict) -> tuple[dict, list[str]]:
        """The new item and the names of the attributes set or removed."""
        # Every operand reads the item as it was before this update.
        results = [
            (_resolve(path, names), fn(item, names, values) if fn else None) for path, fn in steps
        ]
        new = dict(item)
        touched = []
        for name, value in results:
            if name in touched:
                raise invalid(
                    "Invalid UpdateExpression: Two document paths overlap with each other; "
                    "must remove or rewrite one of these paths"
                )
            touched.append(name)
            if value is None:
                new.pop(name, None)
            else:
                new[name] = value
        return new, touched

    return update


_CACHE: dict[tuple[str, str], Expression] = {}
_CACHE_LIMIT = 4096


def parse(kind: str, text: str) -> Expression:
    """A compiled expression of `kind` (condition, filter, key, update, projection), cached."""
    cached = _CACHE.get((kind, text))
    if cached is not None:
        return cached
    what = {
        "condition": "ConditionExpression",
        "filter": "FilterExpression",
        "key": "KeyConditionExpression",
        "update": "UpdateExpression",
        "projection": "ProjectionExpression",
    }[kind]
    parser = _Parser(text, what)
    if kind == "update":
        expression = parser.expression(parser.update())
        expression.fn = _compile_update(expression.tree)
    elif kind == "projection":
        expression = parser.expression(parser.projection())
    else:
        expression = parser.expression(parser.condition())
        if kind != "key":
            expression.fn = _compile_condition(expression.tree)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[(kind, text)] = expression
    return expression


_LEGACY = (
    "Expected",
    "AttributeUpdates",
    "AttributesToGet",
    "KeyConditions",
    "QueryFilter",
    "ScanFilter",
    "ConditionalOperator",
)


def _expressions(request: dict, **texts) -> tuple[dict, dict, dict]:
    """Parse a request's expressions and check its placeholders as DynamoDB does.

    Returns ({kind: Expression}, names, values).
    """
    for legacy in _LEGACY:
        if legacy in request:
            raise unsupported(f"The legacy parameter {legacy}")
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    parsed = {}
    used_names: set[str] = set()
    used_values: set[str] = set()
    for kind, text in texts.items():
        if text is not None:
            expression = parsed[kind] = parse(kind, text)
            used_names |= expression.names
            used_values |= expression.values
    if used_names != names.keys():
        missing = used_names - names.keys()
        if missing:
            raise invalid(
                "An expression attribute name used in the document path is not defined; "
                f"attribute name: {min(missing)}"
            )
        raise invalid(
            "Value provided in ExpressionAttributeNames unused in expressions: "
            f"keys: {{{', '.join(sorted(names.keys() - used_names))}}}"
        )
    if used_values != values.keys():
        missing = used_values - values.keys()
        if missing:
            raise invalid(
                "An expression attribute value used in expression is not defined; "
                f"attribute value: {min(missing)}"
            )
        raise invalid(
            "Value provided in ExpressionAttributeValues unused in expressions: "
            f"keys: {{{', '.join(sorted(values.keys() - used_values))}}}"
        )
    return parsed, names, values


def _projector(expression: Expression | None, names: dict):
    if expression is None:
        return None
    wanted = [_resolve(path, names) for path in expression.tree]
    return lambda item: {name: item[name] for name in wanted if name in item}


# --- tables ---------------------------------------------------------------------


def _key_schema(schema, attribute_types: dict, what: str) -> tuple[str, str | None]:
    if not isinstance(schema, list) or not 1 <= len(schema) <= 2:
        raise invalid(f"{what}: KeySchema must have one or two elements")
    kinds = [element.get("KeyType") for element in schema]
    if kinds not in (["HASH"], ["HASH", "RANGE"]):
        raise invalid(f"{what}: KeySchema must be a HASH key, optionally then a RANGE key")
    names = [element.get("AttributeName") for element in schema]
    for name in names:
        if attribute_types.get(name) not in ("S", "N", "B"):
            raise invalid(
                "One or more parameter values were invalid: Some index key attributes are not "
                f"defined in AttributeDefinitions. Keys: [{name}]"
            )
    return names[0], names[1] if len(names) == 2 else None


class Index:
    """A global secondary index: per partition value, a sorted list of (range value, key)."""

    def __init__(self, spec: dict, table: "Table"):
        self.name = spec.get("IndexName")
        if not self.name:
            raise invalid("A global secondary index needs an IndexName")
        self.hash_name, self.range_name = _key_schema(
            spec.get("KeySchema"), table.attribute_types, f"Index {self.name}"
        )
        self.attributes = frozenset({self.hash_name, self.range_name} - {None})
        self.hash_type = table.attribute_types[self.hash_name]
        self.range_type = table.attribute_types.get(self.range_name)
        self.key_schema = spec["KeySchema"]
        self.projection = spec.get("Projection") or {"ProjectionType": "ALL"}
        kind = self.projection.get("ProjectionType", "ALL")
        if kind not in ("ALL", "KEYS_ONLY", "INCLUDE"):
            raise invalid(f"Unknown ProjectionType {kind}")
        self.projected = None
        if kind != "ALL":
            self.projected = {*table.key_names, self.hash_name, self.range_name} - {None}
            self.projected |= set(self.projection.get("NonKeyAttributes", []))
        self.throughput = spec.get("ProvisionedThroughput")
        self.table = table
        self.partitions: dict[object, list] = {}
        self.placed: dict[tuple, tuple] = {}  # table key -> (partition, entry)
        for key, item in table.items.items():
            self.update(key, item)

    def entry(self, key: tuple, item: dict):
        value = item.get(self.hash_name)
        if value is None or self.hash_type not in value:
            return None
        if self.range_name is None:
            return _scalar(self.hash_type, value[self.hash_type]), (None, key)
        sort = item.get(self.range_name)
        if sort is None or self.range_type not in sort:
            return None
        return (
            _scalar(self.hash_type, value[self.hash_type]),
            (_scalar(self.range_type, sort[self.range_type]), key),
        )

    def update(self, key: tuple, item: dict | None) -> None:
        new = None if item is None else self.entry(key, item)
        old = self.placed.get(key)
        if old == new:
            return
        if old is not None:
            entries = self.partitions[old[0]]
            del entries[bisect.bisect_left(entries, old[1])]
            if not entries:
                del self.partitions[old[0]]
        if new is None:
            del self.placed[key]
        else:
            bisect.insort(self.partitions.setdefault(new[0], []), new[1])
            self.placed[key] = new

    def project(self, item: dict) -> dict:
        if self.projected is None:
            return item
        return {name: value for name, value in item.items() if name in self.projected}

    def description(self) -> dict:
        description = {
            "IndexName": self.name,
            "KeySchema": self.key_schema,
            "Projection": self.projection,
            "IndexStatus": "ACTIVE",
            "IndexArn": f"{self.table.arn}/index/{self.name}",
            "ItemCount": len(self.placed),
            "IndexSizeBytes": 0,
        }
        if self.throughput:
            description["ProvisionedThroughput"] = {**self.throughput, "NumberOfDecreasesToday": 0}
        return description


class Table:
    def __init__(self, request: dict):
        self.name = request["TableName"]
        definitions = request.get("AttributeDefinitions") or []
        self.attribute_types = {d.get("AttributeName"): d.get("AttributeType") for d in definitions}
        self.attribute_definitions = definitions
        self.hash_name, self.range_name = _key_schema(
            request.get("KeySchema"), self.attribute_types, f"Table {self.name}"
        )
        self.key_schema = request["KeySchema"]
        self.key_names = tuple(n for n in (self.hash_name, self.range_name) if n is not None)
        self.key_types = tuple(self.attribute_types[name] for name in self.key_names)
        if request.get("LocalSecondaryIndexes"):
            raise unsupported("LocalSecondaryIndexes")
        self.billing_mode = request.get("BillingMode", "PROVISIONED")
        self.throughput = request.get("ProvisionedThroughput")
        self.arn = f"arn:aws:dynamodb:{_REGION}:{_ACCOUNT}:table/{self.name}"
        self.table_id = str(uuid.uuid4())
        self.created = time.time()
        self.ttl: dict = {"TimeToLiveStatus": "DISABLED"}
        self.items: dict[tuple, dict] = {}
        self.indexes: dict[str, Index] = {}
        self._index_keys: list[tuple[str, str, str]] = []  # (attribute, type, index)
        for spec in request.get("GlobalSecondaryIndexes") or []:
            self.add_index(spec)
        used = set(self.key_names)
        for index in self.indexes.values():
            used |= {index.hash_name, index.range_name} - {None}
        if used != self.attribute_types.keys():
            raise invalid(
                "One or more parameter values were invalid: Number of attributes in KeySchema "
                "does not exactly match number of attributes defined in AttributeDefinitions"
            )

    def add_index(self, spec: dict) -> None:
        index = Index(spec, self)
        if index.name in self.indexes:
            raise invalid(f"Attempting to create an index which already exists: {index.name}")
        self.indexes[index.name] = index
        self._index_keys = [
            (name, self.attribute_types[name], index.name)
            for index in self.indexes.values()
            for name in (index.hash_name, index.range_name)
            if name is not None
        ]

    def drop_index(self, name: str) -> None:
        if self.indexes.pop(name, None) is None:
            raise DynamoError("ResourceNotFoundException", f"Requested resource not found: {name}")
        self._index_keys = [entry for entry in self._index_keys if entry[2] != name]

    def key(self, key) -> tuple:
        """The table key of a request's `Key`, which must name exactly the key attributes."""
        if not isinstance(key, dict) or len(key) != len(self.key_names):
            raise invalid("The provided key element does not match the schema")
        parts = []
        for name, kind in zip(self.key_names, self.key_types, strict=True):
            value = key.get(name)
            if value is None or kind not in value or len(value) != 1:
                raise invalid("The provided key element does not match the schema")
            if value[kind] == "":
                raise invalid(
                    "One or more parameter values are not valid. The AttributeValue for a key "
                    f"attribute cannot contain an empty string value. Key: {name}"
                )
            parts.append(_scalar(kind, value[kind]))
        return tuple(parts)

    def item_key(self, item) -> tuple:
        """The table key of an item to write, checked with its index keys."""
        if not isinstance(item, dict):
            raise invalid("Item must be a map of attribute values")
        parts = []
        for name, kind in zip(self.key_names, self.key_types, strict=True):
            value = item.get(name)
            if value is None:
                raise invalid(
                    f"One or more parameter values were invalid: Missing the key {name} in the item"
                )
            actual, raw = _typed(value)
            if actual != kind:
                raise invalid(
                    "One or more parameter values were invalid: Type mismatch for key "
                    f"{name} expected: {kind} actual: {actual}"
                )
            if raw == "":
                raise invalid(
                    "One or more parameter values are not valid. The AttributeValue for a key "
                    f"attribute cannot contain an empty string value. Key: {name}"
                )
            parts.append(_scalar(kind, raw))
        self.check_index_keys(item)
        return tuple(parts)

    def check_index_keys(self, item: dict) -> None:
        for name, kind, index in self._index_keys:
            value = item.get(name)
            if value is None or (type(value) is dict and len(value) == 1 and value.get(kind)):
                continue  # absent, or a non-empty value of the right type
            actual, raw = _typed(value)
            if actual != kind:
                raise invalid(
                    "One or more parameter values were invalid: Type mismatch for Index Key "
                    f"{name} Expected: {kind} Actual: {actual} IndexName: {index}"
                )
            if raw == "":
                raise invalid(
                    "One or more parameter values are not valid. A value specified for a "
                    "secondary index key is not supported. The AttributeValue for a key "
                    f"attribute cannot contain an empty string value. IndexName: {index}, "
                    f"IndexKey: {name}"
                )

    def key_attributes(self, item: dict, index: Index | None = None) -> dict:
        names = list(self.key_names)
        if index is not None:
            names += [n for n in (index.hash_name, index.range_name) if n and n not in names]
        return {name: item[name] for name in names}

    def write(self, key: tuple, item: dict | None, changed: list[str] | None = None) -> None:
        """Store (or, with None, delete) the item at `key` and move it in every index.

        `changed`: the only attributes that differ from the stored item, when known; an index
        on none of them stays as it is (a refresh moves `ttl` only).
        """
        if item is None:
            if self.items.pop(key, None) is None:
                return
        else:
            self.items[key] = item
        for index in self.indexes.values():
            if changed is None or not index.attributes.isdisjoint(changed):
                index.update(key, item)

    def description(self, status: str = "ACTIVE") -> dict:
        description = {
            "TableName": self.name,
            "TableArn": self.arn,
            "TableId": self.table_id,
            "TableStatus": status,
            "CreationDateTime": self.created,
            "KeySchema": self.key_schema,
            "AttributeDefinitions": self.attribute_definitions,
            "ItemCount": len(self.items),
            "TableSizeBytes": 0,
        }
        if self.billing_mode == "PAY_PER_REQUEST":
            description["BillingModeSummary"] = {
                "BillingMode": "PAY_PER_REQUEST",
                "LastUpdateToPayPerRequestDateTime": self.created,
            }
            description["ProvisionedThroughput"] = {
                "ReadCapacityUnits": 0,
                "WriteCapacityUnits": 0,
                "NumberOfDecreasesToday": 0,
            }
        else:
            description["BillingModeSummary"] = {"BillingMode": "PROVISIONED"}
            description["ProvisionedThroughput"] = {
                **(self.throughput or {}),
                "NumberOfDecreasesToday": 0,
            }
        if self.indexes:
            description["GlobalSecondaryIndexes"] = [
                index.description() for index in self.indexes.values()
            ]
        return description


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


_FIRST = operator.itemgetter(0)
_encode = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps builds one per call


# --- the service ------------------------------------------------------------------


class FakeDynamoDB:
    """The tables and the operations on them; `handle` answers one call."""

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.tables: dict[str, Table] = {}
        self.reset_stats()
        self.operations = {
            "CreateTable": self.create_table,
            "DescribeTable": self.describe_table,
            "UpdateTable": self.update_table,
            "DeleteTable": self.delete_table,
            "ListTables": self.list_tables,
            "DescribeTimeToLive": self.describe_time_to_live,
            "UpdateTimeToLive": self.update_time_to_live,
            "PutItem": self.put_item,
            "GetItem": self.get_item,
            "UpdateItem": self.update_item,
            "DeleteItem": self.delete_item,
            "BatchWriteItem": self.batch_write_item,
            "TransactWriteItems": self.transact_write_items,
            "Query": self.query,
            "Scan": self.scan,
        }

    # counters

    def reset_stats(self) -> None:
        self.calls: Counter = Counter()
        self.errors: Counter = Counter()
        self.item_writes = 0
        self.reset_at = time.monotonic()
        self.cpu_at = time.process_time()

    def stats(self) -> dict:
        return {
            "calls": dict(self.calls),
            "items": sum(len(table.items) for table in self.tables.values()),
            "item_writes": self.item_writes,
            "errors": dict(self.errors),
            "seconds": round(time.monotonic() - self.reset_at, 3),
            "cpu_seconds": round(time.process_time() - self.cpu_at, 3),
            "latency_ms": self.latency * 1000,
            "tables": {name: len(table.items) for name, table in self.tables.items()},
        }

    # dispatch

    def handle(self, operation: str, body: bytes) -> tuple[int, bytes]:
        """Answer one DynamoDB call: (HTTP status, JSON body)."""
        self.calls[operation] += 1
        try:
            handler = self.operations.get(operation)
            if handler is None:
                raise DynamoError(
                    "UnknownOperationException",
                    f"Unknown operation {operation!r} (bench.fake_dynamodb)",
                )
            try:
                request = json.loads(body) if body else {}
            except ValueError:
                raise DynamoError("SerializationException", "Malformed JSON body") from None
            if not isinstance(request, dict):
                raise DynamoError("SerializationException", "The body must be a JSON object")
            status, answer = 200, handler(request)
        except DynamoError as exc:
            self.errors[exc.code] += 1
            status, answer = exc.status, exc.body()
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.errors["InternalServerError"] += 1
            status = 500
            answer = {
                "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "message": f"bench.fake_dynamodb failed: {exc!r}",
            }
        return status, _encode(answer).encode()

    def table(self, name) -> Table:
        table = self.tables.get(name)
        if table is None:
            if not isinstance(name, str) or not name:
                raise invalid("TableName is required")
            raise DynamoError(
                "ResourceNotFoundException",
                f"Requested resource not found: Table: {name} not found",
            )
        return table

    # tables

    def create_table(self, request: dict) -> dict:
        name = request.get("TableName")
        if not isinstance(name, str) or not name:
            raise invalid("TableName is required")
        if name in self.tables:
            raise DynamoError("ResourceInUseException", f"Table already exists: {name}")
        table = self.tables[name] = Table(request)
        return {"TableDescription": table.description()}

    def describe_table(self, request: dict) -> dict:
        return {"Table": self.table(request.get("TableName")).description()}

    def update_table(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
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

    def delete_table(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
        del self.tables[table.name]
        return {"TableDescription": table.description("DELETING")}

    def list_tables(self, request: dict) -> dict:
        names = sorted(self.tables)
        start = request.get("ExclusiveStartTableName")
        if start:
            names = [name for name in names if name > start]
        limit = request.get("Limit") or 100
        answer = {"TableNames": names[:limit]}
        if len(names) > limit:
            answer["LastEvaluatedTableName"] = names[limit - 1]
        return answer

    def describe_time_to_live(self, request: dict) -> dict:
        return {"TimeToLiveDescription": dict(self.table(request.get("TableName")).ttl)}

    def update_time_to_live(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
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

    # single-item writes and reads

    def put_item(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
        item = request.get("Item")
        key = table.item_key(item)
        parsed, names, values = _expressions(request, condition=request.get("ConditionExpression"))
        old = table.items.get(key)
        self.item_writes += 1
        _require_condition(parsed, old, names, values, request)
        table.write(key, item)
        return _returned(request, old, item, None, allowed=("NONE", "ALL_OLD"))

    def update_item(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
        key_value = request.get("Key")
        key = table.key(key_value)
        parsed, names, values = _expressions(
            request,
            update=request.get("UpdateExpression"),
            condition=request.get("ConditionExpression"),
        )
        old = table.items.get(key)
        self.item_writes += 1
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

    def delete_item(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
        key = table.key(request.get("Key"))
        parsed, names, values = _expressions(request, condition=request.get("ConditionExpression"))
        old = table.items.get(key)
        self.item_writes += 1
        _require_condition(parsed, old, names, values, request)
        table.write(key, None)
        return _returned(request, old, None, None, allowed=("NONE", "ALL_OLD"))

    def get_item(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
        key = table.key(request.get("Key"))
        parsed, names, _ = _expressions(request, projection=request.get("ProjectionExpression"))
        item = table.items.get(key)
        if item is None:
            return {}
        project = _projector(parsed.get("projection"), names)
        return {"Item": project(item) if project else item}

    # many items

    def batch_write_item(self, request: dict) -> dict:
        batches = request.get("RequestItems")
        if not isinstance(batches, dict) or not batches:
            raise invalid("RequestItems must name at least one table")
        writes = []
        for name, requests in batches.items():
            table = self.table(name)
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
        self.item_writes += len(writes)
        return {"UnprocessedItems": {}}

    def transact_write_items(self, request: dict) -> dict:
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
            table = self.table(spec.get("TableName"))
            key = table.item_key(spec.get("Item")) if kind == "Put" else table.key(spec.get("Key"))
            if (table.name, key) in keys:
                raise invalid("Transaction request cannot include multiple operations on one item")
            keys.add((table.name, key))
            if kind == "ConditionCheck" and not spec.get("ConditionExpression"):
                raise invalid("A ConditionCheck needs a ConditionExpression")
            parsed, names, values = _expressions(
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
        self.item_writes += sum(1 for p in prepared if p[0] != "ConditionCheck")
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

    def query(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
        if "KeyConditionExpression" not in request:
            raise invalid("Query needs a KeyConditionExpression (KeyConditions is not supported)")
        parsed, names, values = _expressions(
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
                (key[1] if len(key) == 2 else None, key)
                for key in table.items
                if key[0] == partition
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
                    "The provided starting key is outside query boundaries based on provided "
                    "conditions"
                )
            if forward:
                lo = max(lo, bisect.bisect_right(entries, start_sort))
            else:
                hi = min(hi, bisect.bisect_left(entries, start_sort))
        positions = range(lo, hi) if forward else range(hi - 1, lo - 1, -1)
        return self._read(
            request,
            table,
            index,
            (table.items[entries[i][1]] for i in positions),
            parsed,
            names,
            values,
        )

    def scan(self, request: dict) -> dict:
        table = self.table(request.get("TableName"))
        if "Segment" in request or "TotalSegments" in request:
            raise unsupported("Parallel Scan (Segment, TotalSegments)")
        parsed, names, values = _expressions(
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
        return self._read(
            request,
            table,
            index,
            (table.items[keys[i]] for i in range(position, len(keys))),
            parsed,
            names,
            values,
        )

    def _read(self, request, table, index, items, parsed, names, values) -> dict:
        """Read items in order up to Limit or 1 MB, then filter, project and page."""
        limit = request.get("Limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise invalid("Limit must be at least 1")
        select = request.get("Select")
        projection = _projector(parsed.get("projection"), names)
        if select == "COUNT" and projection is not None:
            raise invalid("Cannot specify the ProjectionExpression when choosing to get COUNT")
        if select == "SPECIFIC_ATTRIBUTES" and projection is None:
            raise invalid("SPECIFIC_ATTRIBUTES needs a ProjectionExpression")
        keep = parsed["filter"].fn if "filter" in parsed else None
        found, count, scanned, size, last = [], 0, 0, 0, None
        for item in items:
            scanned += 1
            size += _item_size(item)
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
        name = _resolve(path, names)
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
    return _scalar(kind, av[kind])


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


# --- HTTP -----------------------------------------------------------------------

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
_REASONS.update({100: "Continue", 411: "Length Required", 413: "Payload Too Large"})
_REASONS[501] = "Not Implemented"
_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024


def _header(head: bytes, lowered: bytes, name: bytes) -> bytes:
    """The value of header `name` (b"\\r\\nname:", lowercase) in a head ending in CRLF."""
    start = lowered.find(name)
    if start < 0:
        return b""
    start += len(name)
    return head[start : lowered.index(b"\r\n", start)].strip()


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection. Answers go out in request order: every DynamoDB
    answer is delayed by the same latency, so the k-th timer to fire sends the k-th answer."""

    def __init__(self, service: FakeDynamoDB, loop: asyncio.AbstractEventLoop, ids, live: set):
        self.service = service
        self.live = live
        self.loop = loop
        self.ids = ids
        self.transport = None
        self.buffer = bytearray()
        self.head = None  # (method, target, keep_alive, operation, length) awaiting its body
        self.queue: deque = deque()  # [response bytes, close after, delayed]
        self.closing = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.live.add(self)

    def connection_lost(self, exc) -> None:
        self.live.discard(self)
        self.transport = None
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        while not self.closing:
            request = self._next_request()
            if request is None:
                return
            self._answer(*request)

    def _next_request(self):
        buffer = self.buffer
        if self.head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    self._fail(413)
                return None
            # Four headers matter; find them in the lowered head rather than split every line.
            head = bytes(buffer[: end + 2])
            del buffer[: end + 4]
            line_end = head.find(b"\r\n")
            parts = head[:line_end].split(b" ")
            if len(parts) != 3:
                self._fail(400)
                return None
            method, target, version = parts
            lowered = head.lower()
            if b"\r\ntransfer-encoding:" in lowered:
                self._fail(501)  # boto3 always sends Content-Length
                return None
            try:
                length = int(_header(head, lowered, b"\r\ncontent-length:") or b"0")
            except ValueError:
                self._fail(400)
                return None
            if length > _MAX_BODY or length < 0:
                self._fail(413)
                return None
            connection = _header(lowered, lowered, b"\r\nconnection:")
            if version == b"HTTP/1.1":
                keep_alive = connection != b"close"
            else:
                keep_alive = connection == b"keep-alive"
            target_header = _header(head, lowered, b"\r\nx-amz-target:").decode("latin-1")
            expect = _header(lowered, lowered, b"\r\nexpect:")
            if expect == b"100-continue" and len(buffer) < length:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.head = (method, target, keep_alive, target_header, length)
        method, target, keep_alive, target_header, length = self.head
        if len(buffer) < length:
            return None
        body = bytes(buffer[:length])
        del buffer[:length]
        self.head = None
        return method, target, keep_alive, target_header, body

    def _answer(self, method, target, keep_alive, target_header, body) -> None:
        service = self.service
        close = not keep_alive
        if method == b"POST" and target_header:
            operation = target_header.rpartition(".")[2]
            if not target_header.startswith(TARGET_PREFIX):
                operation = target_header
            status, payload = service.handle(operation, body)
            self._send(status, payload, CONTENT_TYPE, close, delayed=service.latency > 0)
            return
        path = target.split(b"?", 1)[0]
        if method == b"GET" and path == b"/stats":
            payload = json.dumps(service.stats()).encode()
            self._send(200, payload, "application/json", close)
        elif method == b"POST" and path == b"/reset-stats":
            service.reset_stats()
            self._send(200, b'{"reset":true}', "application/json", close)
        elif method == b"POST" and path == b"/":
            error = DynamoError("UnknownOperationException", "No X-Amz-Target header")
            self._send(400, json.dumps(error.body()).encode(), CONTENT_TYPE, close)
        else:
            self._send(404, b'{"message":"not found"}', "application/json", close)

    def _send(self, status: int, payload: bytes, content_type: str, close: bool, *, delayed=False):
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
            f"x-amzn-RequestId: {next(self.ids)}\r\n"
            f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
        ).encode()
        if close:
            self.closing = True
        if delayed:
            self.queue.append((head + payload, close, True))
            self.loop.call_later(self.service.latency, self._release)
        elif self.queue:
            self.queue.append((head + payload, close, False))  # after the answers before it
        else:
            self._write(head + payload, close)

    def _release(self) -> None:
        """A delayed answer is due: send the oldest one and the undelayed ones behind it."""
        queue = self.queue
        if not queue:
            return  # the connection went away
        data, close, _ = queue.popleft()
        self._write(data, close)
        while queue and not queue[0][2]:
            data, close, _ = queue.popleft()
            self._write(data, close)

    def _write(self, data: bytes, close: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(data)
        if close:
            self.transport.close()
            self.transport = None
            self.queue.clear()

    def _fail(self, status: int) -> None:
        self.buffer.clear()
        self._send(status, b'{"message":"bad request"}', "application/json", True)


async def serve(host: str, port: int, latency_ms: float, ready=None) -> None:
    """Serve until SIGTERM or SIGINT; `ready(port)` is called once listening."""
    loop = asyncio.get_running_loop()
    service = FakeDynamoDB(latency=max(latency_ms, 0) / 1000)
    ids = (f"fake-{n:010d}" for n in range(1, 1 << 62))
    live: set[_Connection] = set()
    server = await loop.create_server(
        lambda: _Connection(service, loop, ids, live), host, port, backlog=2048
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    await stop.wait()
    server.close()
    # Clients keep idle keep-alive connections open; wait_closed would wait for them.
    for connection in list(live):
        if connection.transport is not None:
            connection.transport.abort()
    await server.wait_closed()


def _announce(host: str):
    def ready(port: int) -> None:
        print(f"Running on http://{host}:{port}", flush=True)

    return ready


# --- measuring it ---------------------------------------------------------------

_MEASURE_TABLE = "fake_dynamodb_measure"
_STATIC_HEADERS = (
    # What boto3 sends besides the target and length, so that the server parses as much.
    "Host: 127.0.0.1\r\nAccept-Encoding: identity\r\n"
    f"Content-Type: {CONTENT_TYPE}\r\n"
    "User-Agent: Boto3/1.40 md/Botocore#1.40 ua/2.1 os/linux lang/python#3.12 "
    "cfg/retry-mode#standard\r\n"
    "X-Amz-Date: 20260101T000000Z\r\n"
    "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
    "Signature=0000000000000000000000000000000000000000000000000000000000000000\r\n"
    "amz-sdk-invocation-id: 00000000-0000-0000-0000-000000000000\r\n"
    "amz-sdk-request: attempt=1; max=2\r\n"
)


def _raw_request(operation: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST / HTTP/1.1\r\n{_STATIC_HEADERS}X-Amz-Target: {TARGET_PREFIX}{operation}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def _cycle(worker: int, n: int) -> list[tuple[str, dict]]:
    """One connection's life in the registry's calls: register, refresh, get, deregister."""
    cid = f"{worker:04d}-{n:08d}-0000-0000-000000000000"
    item = {
        "connection_id": {"S": cid},
        "tenant": {"S": f"tenant-{worker % 10}"},
        "deployment_id": {"S": "prod"},
        "connection_type": {"S": "client"},
        "connected_at": {"S": "2026-01-01T00:00:00.000Z"},
        "ttl": {"N": "1800003600"},
        "instance_id": {"S": f"host-{worker % 4}"},
        "channel_name": {"S": f"specific.{cid}"},
        "client_addr": {"S": "203.0.113.7:50123"},
        "scope_key": {"S": f"prod#client#{cid}"},
    }
    key = {"connection_id": {"S": cid}}
    table = _MEASURE_TABLE
    return [
        (
            "PutItem",
            {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(connection_id)",
            },
        ),
        (
            "UpdateItem",
            {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET #ttl = :ttl",
                "ConditionExpression": "attribute_exists(connection_id)",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {":ttl": {"N": "1800007200"}},
            },
        ),
        ("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}),
        ("DeleteItem", {"TableName": table, "Key": key, "ReturnValues": "ALL_OLD"}),
    ]


def _create_measure_table() -> dict:
    from realtime.registry.dynamodb import ATTRIBUTE_DEFINITIONS, GLOBAL_SECONDARY_INDEXES

    return {
        "TableName": _MEASURE_TABLE,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "KeySchema": [{"AttributeName": "connection_id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": GLOBAL_SECONDARY_INDEXES,
        "BillingMode": "PAY_PER_REQUEST",
    }


async def _raw_load(port: int, connections: int, seconds: float) -> tuple[int, list[float]]:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []

    async def worker(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        try:
            while time.monotonic() < deadline:
                for operation, body in _cycle(number, n):
                    started = time.monotonic()
                    writer.write(_raw_request(operation, body))
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
                    answer = await reader.readexactly(length)
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(f"{operation} failed: {answer[:200]!r}")
                    latencies.append(time.monotonic() - started)
                n += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return len(latencies), latencies


def _boto3_load(port: int, connections: int, seconds: float) -> tuple[int, list[float]]:
    from realtime.registry.dynamodb import make_client

    client = make_client(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="testing",
        secret_access_key="testing",
        max_connections=connections,
        read_timeout=30,
    )
    methods = {
        "PutItem": client.put_item,
        "UpdateItem": client.update_item,
        "GetItem": client.get_item,
        "DeleteItem": client.delete_item,
    }
    start = threading.Barrier(connections + 1)
    latencies: list[float] = []
    deadline = [0.0]

    def worker(number: int) -> None:
        start.wait()
        n = 0
        while time.monotonic() < deadline[0]:
            for operation, body in _cycle(number, n):
                started = time.monotonic()
                methods[operation](**body)
                latencies.append(time.monotonic() - started)
            n += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return len(latencies), latencies


def _http(port: int, method: str, path: str, operation: str | None = None, body=None) -> dict:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": CONTENT_TYPE}
    if operation:
        headers["X-Amz-Target"] = TARGET_PREFIX + operation
    connection.request(
        method, path, body=json.dumps(body) if body is not None else None, headers=headers
    )
    response = connection.getresponse()
    answer = json.loads(response.read() or b"{}")
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{operation or path}: {response.status} {answer}")
    return answer


def measure(args) -> None:
    """Start the endpoint as a child process, load it from this one, print the figures."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fake_dynamodb",
            "--port",
            "0",
            "--latency-ms",
            str(args.latency_ms),
        ],
        cwd=_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        match = re.search(r"Running on http://127\.0\.0\.1:(\d+)", line)
        if not match:
            raise RuntimeError(f"the endpoint did not start: {line!r}")
        port = int(match.group(1))
        _http(port, "POST", "/", "CreateTable", _create_measure_table())
        _http(port, "POST", "/reset-stats")
        cpu = time.process_time()
        started = time.monotonic()
        if args.client == "raw":
            calls, latencies = asyncio.run(_raw_load(port, args.connections, args.seconds))
        else:
            calls, latencies = _boto3_load(port, args.connections, args.seconds)
        elapsed = time.monotonic() - started
        client_cpu = time.process_time() - cpu
        stats = _http(port, "GET", "/stats")
    finally:
        child.terminate()
        child.wait(10)
    latencies.sort()
    server_calls = sum(stats["calls"].values())

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    per_call = stats["cpu_seconds"] / max(server_calls, 1)
    print(
        f"latency {args.latency_ms:g} ms, {args.connections} {args.client} connections, "
        f"{elapsed:.1f} s: {calls / elapsed:,.0f} calls/s "
        f"(round trip p50 {percentile(0.5):.2f} ms, p99 {percentile(0.99):.2f} ms); "
        f"server CPU {per_call * 1e6:.0f} us/call, {stats['cpu_seconds'] / elapsed:.0%} of a "
        f"core (a whole core: ~{1 / max(per_call, 1e-9):,.0f} calls/s); "
        f"client CPU {client_cpu / elapsed:.0%} of a core; errors {stats['errors'] or 'none'}"
    )


# --- command line -----------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fake_dynamodb", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument(
        "--measure", action="store_true", help="start an endpoint and measure its throughput"
    )
    parser.add_argument("--connections", type=int, default=200, help="with --measure")
    parser.add_argument("--seconds", type=float, default=5.0, help="with --measure")
    parser.add_argument("--client", choices=("raw", "boto3"), default="raw", help="with --measure")
    args = parser.parse_args(argv)
    if args.measure:
        measure(args)
        return
    asyncio.run(serve(args.host, args.port, args.latency_ms, ready=_announce(args.host)))


if __name__ == "__main__":
    main()
