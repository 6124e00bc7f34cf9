"""Attribute values ({"S": "x"}, {"N": "1"}, ...): their types, numbers, comparisons, sizes."""

import base64
import json
import operator
from decimal import Context, Decimal, InvalidOperation

from bench.fake_dynamodb.errors import invalid

NUMBERS = Context(prec=38)  # DynamoDB's precision


def typed(av) -> tuple[str, object]:
    """(type, raw wire value) of an attribute value such as {"S": "x"}."""
    if not isinstance(av, dict) or len(av) != 1:
        raise invalid(f"Supplied AttributeValue is not a single-typed value: {av!r}")
    return next(iter(av.items()))


def number(raw) -> Decimal:
    try:
        return Decimal(raw)
    except (InvalidOperation, TypeError, ValueError):
        raise invalid(f"A value provided cannot be converted into a number: {raw!r}") from None


def scalar(kind: str, raw):
    """The comparable Python value of a key type's wire value (S, N or B)."""
    if kind == "S":
        return raw
    if kind == "N":
        return number(raw)
    return base64.b64decode(raw)


def format_number(value: Decimal) -> str:
    text = format(value.normalize(NUMBERS), "f")
    return "0" if text in ("-0", "") else text


def equal(a, b) -> bool:
    if a is None or b is None:
        return False
    (ta, va), (tb, vb) = typed(a), typed(b)
    if ta != tb:
        return False
    if ta == "N":
        return number(va) == number(vb)
    if ta in ("SS", "BS"):
        return set(va) == set(vb)
    if ta == "NS":
        return {number(v) for v in va} == {number(v) for v in vb}
    return va == vb


def _ordered(a, b):
    """(x, y) comparable Python values of two attribute values, or None when incomparable."""
    if a is None or b is None:
        return None
    (ta, va), (tb, vb) = typed(a), typed(b)
    if ta != tb or ta not in ("S", "N", "B"):
        return None
    return scalar(ta, va), scalar(tb, vb)


def _compare(op):
    def compare(a, b) -> bool:
        pair = _ordered(a, b)
        return pair is not None and op(*pair)

    return compare


COMPARISONS = {
    "=": equal,
    # A missing attribute is "not equal" to anything (DynamoDB's reading of <>).
    "<>": lambda a, b: not equal(a, b),
    "<": _compare(operator.lt),
    "<=": _compare(operator.le),
    ">": _compare(operator.gt),
    ">=": _compare(operator.ge),
}


def item_size(item: dict) -> int:
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
