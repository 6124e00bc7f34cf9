"""Handshake validation: a query string in, a ConnectionRequest or a HandshakeError out.

Pure code, no I/O: the consumer calls `parse_connection_request` before anything is written.
Values are validated, never cleaned: a value the registry could not store exactly as sent is
refused, so what a client asked for is what operators later query by.

Two more checks of the same kind: `token_from_query` takes the client's token (verified by
tokens.py) out of the query string, and `check_origin` applies WS_ALLOWED_ORIGINS
to the handshake's Origin header with Channels' own matching rules.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlparse

from channels.security.websocket import OriginValidator

from realtime.core.refusals import refusal

__all__ = [
    "MAX_QUERY_STRING_BYTES",
    "PARAMETERS",
    "TOKEN_PARAMETER",
    "VALUE_PATTERN",
    "VALUE_RULE",
    "ConnectionRequest",
    "HandshakeError",
    "check_origin",
    "is_valid_value",
    "origin_pattern_errors",
    "parse_connection_request",
    "token_from_query",
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
    """A refused handshake: `code` is stable and machine-readable, `detail` is for people.

    The close code is the refusal table's for `code` (refusals.py); `detail` defaults to its.
    """

    def __init__(self, code: str, detail: str | None = None):
        entry = refusal(code)
        self.code = code
        self.detail = detail or entry.detail
        self.close_code = entry.close_code
        super().__init__(self.detail)


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
    pairs = _query_pairs(query_string)

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
        )
    return request


# --- the client's token -----------------------------------------------------------------

# Browsers cannot set headers on a WebSocket handshake, so the token travels in the query.
TOKEN_PARAMETER = "token"


def token_from_query(query_string: bytes) -> str | None:
    """The `token` query parameter as sent, or None when it is absent.

    As strict as `parse_connection_request` (same length bound, same decoding): given twice it
    is refused, never one of the two picked. The value itself is not checked here; that is
    `tokens.verify_token`'s job (a bare or empty `token` comes back as "").

    Raises:
        HandshakeError: 4400 `query_too_long`, `invalid_encoding` or `repeated_parameter`.
    """
    given = [value for name, value in _query_pairs(query_string) if name == TOKEN_PARAMETER]
    if len(given) > 1:
        raise HandshakeError(
            "repeated_parameter",
            f"query parameter '{TOKEN_PARAMETER}' must be given once, got {len(given)}",
        )
    return given[0] if given else None


def _query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """The query string's name-value pairs: ASCII, percent-decoded as UTF-8, bounded."""
    if len(query_string) > MAX_QUERY_STRING_BYTES:
        raise HandshakeError(
            "query_too_long", f"query string is longer than {MAX_QUERY_STRING_BYTES} bytes"
        )
    try:
        return parse_qsl(
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


# --- Origin -----------------------------------------------------------------------------


def check_origin(headers: Iterable[tuple[bytes, bytes]], allowed: Sequence[str]) -> None:
    """Refuse a handshake whose Origin is not in `allowed` (WS_ALLOWED_ORIGINS).

    Patterns follow Channels' OriginValidator, whose matching this calls rather than copies:
    `https://app.example.com` is that scheme, host and port (the scheme's default port when
    none is written: 80 for http/ws, 443 for https/wss); a host that starts with a dot,
    `https://.example.com`, is that domain and all its subdomains; a pattern without a
    scheme, `example.com`, is that host with any scheme and any port. Case is ignored.
    `https://*.example.com` is not a pattern Channels knows (see `origin_pattern_errors`).

    An empty `allowed`, or one holding `*`, checks nothing. Otherwise, as in Channels, a
    handshake without an Origin header is refused: browsers always send one, so only
    non-browser clients meet this, and they can send the header like any other (websockets'
    `origin=`, websocat's `--origin`). Unlike Channels (which keeps the last one), several
    Origin headers are refused: a browser sends one, and picking one of several would let
    whatever sits in between choose.

    Channels refuses with an HTTP 403 before the upgrade; the consumer instead accepts and
    closes with an error frame and 4403, as the protocol promises every refused client.

    Args:
        headers: the ASGI scope's headers, (name, value) byte pairs.
        allowed: origin patterns; empty allows every origin.

    Raises:
        HandshakeError: 4403 `origin_not_allowed`.
    """
    if not allowed or "*" in allowed:
        return
    origins = [value for name, value in headers if name.lower() == b"origin"]
    if not origins:
        raise _origin_refused("this server requires an Origin header")
    if len(origins) > 1:
        raise _origin_refused("the handshake has several Origin headers")
    # A broken pattern ("https://a:99999") makes Channels raise at every match, even for
    # origins that a later, good pattern allows: leave such patterns out. If none is left,
    # nothing matches; an empty `usable` must never mean "no check".
    usable = _usable_patterns(tuple(allowed))
    try:
        # latin-1 decodes any bytes, as in Channels.
        parsed = urlparse(origins[0].decode("latin-1"))
        valid = bool(usable) and OriginValidator(None, list(usable)).valid_origin(parsed)
    except ValueError:
        # urlparse refuses "http://[::1" and .port refuses "http://a:99999"; Channels would
        # let the exception escape. An origin that cannot be parsed is not an allowed one.
        valid = False
    if not valid:
        raise _origin_refused("this origin may not connect to this server")


def origin_pattern_errors(patterns: Iterable[str]) -> list[str]:
    """Patterns that can never match an origin under Channels' rules, each with the reason.

    For a start-up check of WS_ALLOWED_ORIGINS: such a pattern fails closed (it refuses the
    browsers it was meant to admit), so it is a configuration mistake worth saying loudly.
    """
    errors = []
    for pattern in patterns:
        problem = _pattern_problem(pattern)
        if problem:
            errors.append(f"{pattern!r} {problem}")
    return errors


@lru_cache(maxsize=8)
def _usable_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(pattern for pattern in patterns if _pattern_problem(pattern) is None)


def _pattern_problem(pattern: str) -> str | None:
    if pattern == "*":
        return None
    if not pattern:
        return "is empty"
    if "*" in pattern:
        return (
            "uses '*' inside a host, which Channels does not support: write "
            "'https://.example.com' for example.com and all its subdomains"
        )
    try:
        parsed = urlparse(pattern.lower())
        _ = parsed.port  # Channels reads it at every match: a bad one would fail every time
    except ValueError as exc:
        return f"cannot be parsed ({exc})"
    if parsed.scheme and parsed.hostname is None:
        # urlparse reads "localhost:8000" as scheme "localhost": it would never match.
        return (
            "has no host: write it as 'scheme://host[:port]', for example 'http://localhost:8000'"
        )
    return None


def _origin_refused(detail: str) -> HandshakeError:
    return HandshakeError("origin_not_allowed", detail)
