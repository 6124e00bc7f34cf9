"""Structured log lines: one event name, then key=value context.

    logger.info(event("connection.opened", connection_id=cid, tenant="acme"))
    -> connection.opened connection_id=... tenant=acme

Values with spaces, quotes or `=` are JSON-quoted so that a line always splits back into the
same fields. Callers never pass tokens or secrets.
"""

import json
import logging
import re

__all__ = ["TokenRedactor", "event", "redact"]

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/@#[]")


def _value(value) -> str:
    text = str(value)
    if text and all(c in _PLAIN for c in text):
        return text
    return json.dumps(text)


def event(name: str, /, **fields) -> str:
    return " ".join([name, *(f"{key}={_value(value)}" for key, value in fields.items())])


# A client's token travels in the handshake's query string; an API or metrics token in an
# Authorization header. Neither may reach a log line, whoever writes it.
_SECRETS = re.compile(r"(?i)((?:[?&]|\b)token=|\bbearer\s+)[^\s&\"',;]+")


class TokenRedactor(logging.Filter):
    """A logging filter that replaces tokens in a record's message with `[redacted]`.

    For loggers and handlers this project does not write itself (the servers', Twisted's,
    Django's): our own events never carry a token in the first place.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRETS.search(message):
            record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            # A traceback's messages can carry a URL too; the formatter uses exc_text if set.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and _SECRETS.search(record.exc_text):
            record.exc_text = redact(record.exc_text)
        return True


def redact(text: str) -> str:
    """`text` with every token replaced by `[redacted]`."""
    return _SECRETS.sub(r"\1[redacted]", text)
