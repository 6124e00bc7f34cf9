"""Handshake validation: a query string in, a ConnectionRequest or a HandshakeError out.

Pure code, no I/O: the consumer calls `parse_connection_request` before anything is written.
Values are validated, never cleaned: a value the registry could not store exactly as sent is
refused, so what a client asked for is what operators later query by.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from . import close_codes

__all__ = [
    "MAX_QUERY_STRING_BYTES",
    "PARAMETERS",
    "VALUE_PATTERN",
    "VALUE_RULE",
    "ConnectionRequest",
    "HandshakeError",
    "is_valid_value",
    "parse_connection_request",
]

PARAMETERS = ("tenant", "deployment_id", "connection_type")
MAX_VALUE_LENGTH = 128
# Three values of 128 characters, percent-encoded at worst, plus room for later parameters.
MAX_QUERY_STRING_BYTES = 4096

# The rule for tenant, deployment_id and connection_type wherever they come from (handshake,
# management API). The registry relies on it: "#" separates the parts of the index sort key.
VALUE_PATTERN = rf"[A-Za-z0-9._-]{{1,{MAX_VALUE_LENGTH}}}"
VALUE_RULE = f"1..{MAX_VALUE_LENGTH} characters of A-Z a-z 0-9 . _ -"
_VALUE = re.compile(VALUE_PATTERN)


def is_valid_value(value: str) -> bool:
    """Whether `value` is acceptable as a tenant, deployment_id or connection_type, as is."""
    return _VALUE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    """What a valid handshake asks for."""

    tenant: str
    deployment_id: str
    connection_type: str


class HandshakeError(Exception):
    """A refused handshake: `code` is stable and machine-readable, `detail` is for people."""

    def __init__(self, code: str, detail: str, close_code: int = close_codes.INVALID_QUERY):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.close_code = close_code


def parse_connection_request(
    query_string: bytes, *, allowed_connection_types: frozenset[str] = frozenset()
) -> ConnectionRequest:
    """Validate the handshake's query string.

    Args:
        query_string: the raw query string from the ASGI scope (without `?`).
        allowed_connection_types: when not empty, the only accepted `connection_type` values.

    Raises:
        HandshakeError: with close code 4400 for a malformed query, 4403 for a
            connection_type that is valid but not allowed here.
    """
    if len(query_string) > MAX_QUERY_STRING_BYTES:
        raise HandshakeError(
            "query_too_long", f"query string is longer than {MAX_QUERY_STRING_BYTES} bytes"
        )
    try:
        pairs = parse_qsl(
            query_string.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=None,
        )
    except UnicodeDecodeError:
        raise HandshakeError(
            "invalid_encoding", "query string must be ASCII with UTF-8 percent-encoding"
        ) from None

    values: dict[str, list[str]] = {name: [] for name in PARAMETERS}
    for name, value in pairs:
        if name in values:
            values[name].append(value)

    for name in PARAMETERS:
        given = values[name]
        if not given:
            raise HandshakeError("missing_parameter", f"query parameter '{name}' is required")
        if len(given) > 1:
            raise HandshakeError(
                "repeated_parameter",
                f"query parameter '{name}' must be given once, got {len(given)}",
            )
        if not is_valid_value(given[0]):
            raise HandshakeError(
                "invalid_parameter", f"query parameter '{name}' must be {VALUE_RULE}"
            )

    request = ConnectionRequest(*(values[name][0] for name in PARAMETERS))
    if allowed_connection_types and request.connection_type not in allowed_connection_types:
        raise HandshakeError(
            "connection_type_not_allowed",
            f"connection_type '{request.connection_type}' is not accepted by this server",
            close_codes.FORBIDDEN,
        )
    return request
