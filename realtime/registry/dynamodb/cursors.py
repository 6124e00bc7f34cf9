"""Pagination cursors: a query's LastEvaluatedKey, handed to callers as an opaque string.

A cursor comes back from outside (the API's `cursor` parameter), so it is checked before
DynamoDB sees it: the right attributes of the right index, inside the query it is used
with. A start key outside the key condition would otherwise reach DynamoDB, which answers
it with a ValidationException (an outage, to the caller), or moto, which starts elsewhere.
"""

import base64
import binascii
import json

from realtime.registry.dynamodb.schema import PARTITION_KEY, index_key_names
from realtime.registry.errors import InvalidCursor

__all__ = ["decode_cursor", "encode_cursor", "start_key_names"]


def start_key_names(index: str) -> tuple[str, ...]:
    """The attributes of a start key on an index: the table's key and the index's."""
    return tuple(dict.fromkeys((PARTITION_KEY, *index_key_names(index))))


def encode_cursor(index: str, last_evaluated_key: dict) -> str:
    """A cursor for the page after `last_evaluated_key`, which holds the index's key."""
    key = {name: last_evaluated_key[name] for name in start_key_names(index)}
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, index: str, partition: tuple[str, str], sort_prefix: str) -> dict:
    """A start key from a cursor, checked to lie inside the query it is used with.

    Args:
        partition: the query's (partition key name, value).
        sort_prefix: what the query's sort key begins with ("" for any).

    Raises:
        InvalidCursor: not a start key of this index, partition and prefix.
    """
    partition_name, partition_value = partition
    _, sort_name = index_key_names(index)
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        valid = (
            isinstance(key, dict)
            and set(key) == set(start_key_names(index))
            and all(
                isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str)
                for v in key.values()
            )
            and key[partition_name]["S"] == partition_value
            # DynamoDB rejects a start key outside the key condition (ValidationException).
            and key[sort_name]["S"].startswith(sort_prefix)
        )
    except (ValueError, UnicodeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidCursor("cursor is not valid for this query")
    return key
