"""Expression trees (expression_parser.py) compiled into functions of (item, names, values).

Compiled once per expression text and cached (expressions.py), so that a call runs closures
rather than walking its tree again.
"""

import base64

from bench.fake_dynamodb.errors import invalid
from bench.fake_dynamodb.values import COMPARISONS, NUMBERS, equal, format_number, number, typed


def _getter(node):
    """fn(item, names, values) -> attribute value or None, for a path or a value."""
    kind, token = node
    if kind == "value":
        return lambda item, names, values: values[token]
    if token[0] == "#":
        return lambda item, names, values: item.get(names[token])
    return lambda item, names, values: item.get(token)


def resolve(path, names: dict) -> str:
    token = path[1]
    return names[token] if token[0] == "#" else token


def compile_condition(tree):
    kind = tree[0]
    if kind in ("or", "and"):
        left, right = compile_condition(tree[1]), compile_condition(tree[2])
        if kind == "or":
            return lambda i, n, v: left(i, n, v) or right(i, n, v)
        return lambda i, n, v: left(i, n, v) and right(i, n, v)
    if kind == "not":
        inner = compile_condition(tree[1])
        return lambda i, n, v: not inner(i, n, v)
    if kind == "cmp":
        compare, x, y = COMPARISONS[tree[1]], _getter(tree[2]), _getter(tree[3])
        return lambda i, n, v: compare(x(i, n, v), y(i, n, v))
    if kind == "between":
        x, low, high = _getter(tree[1]), _getter(tree[2]), _getter(tree[3])
        ge, le = COMPARISONS[">="], COMPARISONS["<="]

        def between(i, n, v):
            value = x(i, n, v)
            return ge(value, low(i, n, v)) and le(value, high(i, n, v))

        return between
    if kind == "in":
        x, options = _getter(tree[1]), [_getter(o) for o in tree[2]]
        return lambda i, n, v: any(equal(x(i, n, v), o(i, n, v)) for o in options)
    # functions
    name, args = tree[1], tree[2]
    target = _getter(args[0])
    if name == "attribute_exists":
        return lambda i, n, v: target(i, n, v) is not None
    if name == "attribute_not_exists":
        return lambda i, n, v: target(i, n, v) is None
    prefix = _getter(args[1])  # begins_with

    def begins_with(i, n, v):
        kind, start = typed(prefix(i, n, v))
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
    combine = NUMBERS.add if node[0] == "+" else NUMBERS.subtract

    def arithmetic(i, n, v):
        a, b = left(i, n, v), right(i, n, v)
        if "N" not in a or "N" not in b:
            raise invalid("An operand in the update expression has an incorrect data type")
        return {"N": format_number(combine(number(a["N"]), number(b["N"])))}

    return arithmetic


def compile_update(actions):
    steps = [
        (action[1], _update_value(action[2]) if action[0] == "set" else None) for action in actions
    ]

    def update(item: dict, names: dict, values: dict) -> tuple[dict, list[str]]:
        """The new item and the names of the attributes set or removed."""
        # Every operand reads the item as it was before this update.
        results = [
            (resolve(path, names), fn(item, names, values) if fn else None) for path, fn in steps
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
