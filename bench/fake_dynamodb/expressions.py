"""A request's expressions: parsed and compiled once per text, their placeholders checked.

Every operation that takes expressions goes through `request_expressions`, which refuses the
legacy parameters and checks ExpressionAttributeNames and ExpressionAttributeValues against
what the expressions use, as DynamoDB does.
"""

from bench.fake_dynamodb.errors import invalid, unsupported
from bench.fake_dynamodb.expression_compiler import compile_condition, compile_update, resolve
from bench.fake_dynamodb.expression_parser import Expression, Parser

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
    parser = Parser(text, what)
    if kind == "update":
        expression = parser.expression(parser.update())
        expression.fn = compile_update(expression.tree)
    elif kind == "projection":
        expression = parser.expression(parser.projection())
    else:
        expression = parser.expression(parser.condition())
        if kind != "key":
            expression.fn = compile_condition(expression.tree)
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


def request_expressions(request: dict, **texts) -> tuple[dict, dict, dict]:
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


def projector(expression: Expression | None, names: dict):
    if expression is None:
        return None
    wanted = [resolve(path, names) for path in expression.tree]
    return lambda item: {name: item[name] for name in wanted if name in item}
