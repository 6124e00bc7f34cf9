"""Management API input: query strings and JSON bodies in, validated values or ApiError out.

Pure code, no I/O: views.py hands over what the request brought (query parameters as lists,
content type, body bytes) and gets plain values back, or an ApiError that says which status,
machine code and reason to answer with. The rules are the rest of the server's rules:
tenant, deployment_id and connection_type follow the handshake's value rule
(`handshake.is_valid_value`), JSON is parsed as client frames are (`protocol.parse_json`).
Everything is validated, nothing cleaned, and unknown names are refused rather than ignored:
a mistyped filter must not silently widen a listing or a broadcast.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from realtime.core import close_codes, protocol
from realtime.core.handshake import VALUE_RULE, ConnectionRequest, is_valid_value
from realtime.core.leases import is_instance_id
from realtime.core.tokens import default_ttl_seconds

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "ApiError",
    "Broadcast",
    "ListQuery",
    "Scope",
    "TokenRequest",
    "parse_broadcast",
    "parse_disconnect",
    "parse_instances_query",
    "parse_list_query",
    "parse_message",
    "parse_stats_query",
    "parse_token_request",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_LIMIT = re.compile(r"[0-9]{1,4}")
_MAX_CURSOR_LENGTH = 4096

Query = Mapping[str, list[str]]


class ApiError(Exception):
    """A request the API refuses.

    Args:
        status: the HTTP status.
        code: stable and machine-readable (`invalid_parameter`, ...).
        detail: the reason, for people.
        headers: extra response headers (`WWW-Authenticate`, `Allow`).
    """

    def __init__(self, status: int, code: str, detail: str, *, headers: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Scope:
    """A tenant, narrowed by deployment and then by connection type."""

    tenant: str
    deployment_id: str | None = None
    connection_type: str | None = None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a listing asks for: exactly one of `scope` and `instance_id` is set."""

    scope: Scope | None
    instance_id: str | None
    limit: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Broadcast:
    scope: Scope
    data: Any


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What a token is asked for: the connection it admits, and for how long."""

    request: ConnectionRequest
    ttl_seconds: int


# --- query strings ----------------------------------------------------------------------


def parse_list_query(query: Query) -> ListQuery:
    """GET /connections: `tenant[&deployment_id[&connection_type]]` or `instance_id`,
    then `limit` (1..MAX_LIMIT, default DEFAULT_LIMIT) and `cursor`.

    Raises:
        ApiError: 400 with `unknown_parameter`, `repeated_parameter`, `missing_parameter`,
            `invalid_parameter` or `invalid_cursor`.
    """
    values = _single_values(
        query, {"tenant", "deployment_id", "connection_type", "instance_id", "limit", "cursor"}
    )
    instance_id = values.get("instance_id")
    if instance_id is not None:
        scoped = sorted({"tenant", "deployment_id", "connection_type"} & values.keys())
        if scoped:
            raise ApiError(
                400,
                "invalid_parameter",
                f"instance_id cannot be combined with {', '.join(scoped)}: "
                "list by tenant or by instance",
            )
        if not is_instance_id(instance_id):
            raise ApiError(
                400, "invalid_parameter", "instance_id must be 1..256 visible ASCII characters"
            )
        scope = None
    elif "tenant" in values:
        scope = _scope(values, noun="parameter")
    else:
        raise ApiError(400, "missing_parameter", "give tenant (or instance_id) to list connections")
    return ListQuery(scope, instance_id, _limit(values.get("limit")), _cursor(values.get("cursor")))


def parse_stats_query(query: Query) -> str | None:
    """GET /stats: an optional `tenant`. Returns it, or None for every tenant.

    Raises:
        ApiError: 400 as parse_list_query.
    """
    values = _single_values(query, {"tenant"})
    if "tenant" not in values:
        return None
    return _scope(values, noun="parameter").tenant


def parse_instances_query(query: Query) -> None:
    """GET /instances takes no parameters.

    Raises:
        ApiError: 400 `unknown_parameter` for any.
    """
    if query:
        raise ApiError(
            400,
            "unknown_parameter",
            f"this endpoint takes no query parameters; got: {', '.join(sorted(query))}",
        )


def _single_values(query: Query, known: set[str]) -> dict[str, str]:
    unknown = sorted(set(query) - known)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"unknown query parameter(s): {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(known))}",
        )
    values = {}
    for name, given in query.items():
        if len(given) != 1:
            raise ApiError(
                400, "repeated_parameter", f"query parameter '{name}' must be given once"
            )
        values[name] = given[0]
    return values


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(400, "invalid_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def _cursor(text: str | None) -> str | None:
    if text is None:
        return None
    if not text or len(text) > _MAX_CURSOR_LENGTH:
        raise ApiError(400, "invalid_cursor", "cursor is not valid for this query")
    return text


def _scope(values: Mapping[str, Any], *, noun: str) -> Scope:
    """tenant, deployment_id and connection_type (the last narrows the second).

    `noun` is "parameter" (query string) or "field" (JSON body): it names the error codes.
    A given value must be a valid string; JSON null is not "absent".
    """
    where = "query parameter" if noun == "parameter" else "field"
    for name in ("tenant", "deployment_id", "connection_type"):
        if name in values and not (isinstance(values[name], str) and is_valid_value(values[name])):
            raise ApiError(400, f"invalid_{noun}", f"{where} '{name}' must be {VALUE_RULE}")
    if "connection_type" in values and "deployment_id" not in values:
        raise ApiError(
            400,
            f"missing_{noun}",
            f"{where} 'connection_type' narrows a deployment: give 'deployment_id' too",
        )
    return Scope(values["tenant"], values.get("deployment_id"), values.get("connection_type"))


# --- JSON bodies ------------------------------------------------------------------------


def parse_message(content_type: str, params: Mapping[str, str], body: bytes, *, max_bytes: int):
    """POST /connections/{id}/messages: `{"data": <any JSON value>}`. Returns the data.

    Raises:
        ApiError: 415, 400 (`invalid_json`, `not_an_object`, `unknown_field`,
            `missing_field`, `invalid_field`) or 413 (`payload_too_large`).
    """
    fields = _object(content_type, params, body, required={"data"}, optional=set())
    return _data(fields["data"], max_bytes)


def parse_broadcast(
    content_type: str, params: Mapping[str, str], body: bytes, *, max_bytes: int
) -> Broadcast:
    """POST /broadcasts: `{"tenant", "deployment_id"?, "connection_type"?, "data"}`.

    Raises:
        ApiError: as parse_message.
    """
    fields = _object(
        content_type,
        params,
        body,
        required={"tenant", "data"},
        optional={"deployment_id", "connection_type"},
    )
    scope = _scope(fields, noun="field")
    return Broadcast(scope, _data(fields["data"], max_bytes))


def parse_disconnect(content_type: str, params: Mapping[str, str], body: bytes) -> int:
    """DELETE /connections/{id}: no body, or `{"code": 4000..4999}`. Returns the close code.

    Raises:
        ApiError: as parse_message (no 413).
    """
    if not body:
        return close_codes.CLOSED_BY_OPERATOR
    fields = _object(content_type, params, body, required=set(), optional={"code"})
    code = _json_integer(fields.get("code", close_codes.CLOSED_BY_OPERATOR))
    if code is None or not 4000 <= code <= 4999:
        raise ApiError(400, "invalid_field", "field 'code' must be an integer from 4000 to 4999")
    return code


def parse_token_request(
    content_type: str,
    params: Mapping[str, str],
    body: bytes,
    *,
    max_ttl_seconds: int,
    allowed_connection_types: frozenset[str] = frozenset(),
) -> TokenRequest:
    """POST /tokens: `{"tenant", "deployment_id", "connection_type", "ttl_seconds"?}`.

    The three values follow the handshake's rule, and `connection_type` must be one this
    server accepts (WS_CONNECTION_TYPES): a token it would refuse is not issued.
    `ttl_seconds` is an integer from 1 to `max_ttl_seconds` (WS_TOKEN_MAX_TTL_SECONDS);
    without it, `tokens.default_ttl_seconds(max_ttl_seconds)`.

    Raises:
        ApiError: 415 or 400 as parse_message.
    """
    fields = _object(
        content_type,
        params,
        body,
        required={"tenant", "deployment_id", "connection_type"},
        optional={"ttl_seconds"},
    )
    scope = _scope(fields, noun="field")
    if allowed_connection_types and scope.connection_type not in allowed_connection_types:
        raise ApiError(
            400,
            "invalid_field",
            f"field 'connection_type': '{scope.connection_type}' is not accepted by this server "
            "(WS_CONNECTION_TYPES)",
        )
    ttl = _json_integer(fields.get("ttl_seconds", default_ttl_seconds(max_ttl_seconds)))
    if ttl is None or not 1 <= ttl <= max_ttl_seconds:
        raise ApiError(
            400,
            "invalid_field",
            f"field 'ttl_seconds' must be an integer from 1 to {max_ttl_seconds} "
            "(WS_TOKEN_MAX_TTL_SECONDS)",
        )
    request = ConnectionRequest(scope.tenant, scope.deployment_id, scope.connection_type)
    return TokenRequest(request, ttl)


def _json_integer(value) -> int | None:
    """`value` as JSON reads it, if it is an integer: 60 and 60.0 are the same number to JSON
    (and to the API's schema); 60.5 is not an integer, and true is not a number."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def _object(
    content_type: str,
    params: Mapping[str, str],
    body: bytes,
    *,
    required: set[str],
    optional: set[str],
) -> dict:
    if content_type != "application/json" or params.get("charset", "utf-8").lower() != "utf-8":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as JSON with 'Content-Type: application/json' (UTF-8)",
        )
    try:
        value = protocol.parse_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "request body is not UTF-8") from None
    except protocol.InvalidJson as exc:
        raise ApiError(400, "invalid_json", f"request body: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "not_an_object", "request body must be a JSON object")
    unknown = sorted(value.keys() - required - optional)
    if unknown:
        raise ApiError(
            400,
            "unknown_field",
            f"unknown field(s): {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(required | optional))}",
        )
    missing = sorted(required - value.keys())
    if missing:
        raise ApiError(400, "missing_field", f"missing field(s): {', '.join(missing)}")
    return value


def _data(data, max_bytes: int):
    try:
        protocol.check_outgoing(data, max_bytes=max_bytes)
    except protocol.UnsendableData as exc:
        if exc.code == "message_too_big":
            raise ApiError(
                413, "payload_too_large", f"field 'data' {exc.detail} (WS_MAX_MESSAGE_BYTES)"
            ) from None
        # The in-memory layer would carry it, but the answer must not depend on the deployment.
        raise ApiError(400, "invalid_field", f"field 'data' {exc.detail}") from None
    return data
