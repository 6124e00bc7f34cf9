"""Structured log lines: one event name, then key=value context.

    logger.info(event("connection.opened", connection_id=cid, tenant="acme"))
    -> connection.opened connection_id=... tenant=acme

Values with spaces, quotes or `=` are JSON-quoted so that a line always splits back into the
same fields. Callers never pass tokens or secrets.
"""

import json

__all__ = ["event"]

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/@#[]")


def _value(value) -> str:
    text = str(value)
    if text and all(c in _PLAIN for c in text):
        return text
    return json.dumps(text)


def event(name: str, /, **fields) -> str:
    return " ".join([name, *(f"{key}={_value(value)}" for key, value in fields.items())])
