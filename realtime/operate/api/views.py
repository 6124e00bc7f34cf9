"""The management API: thin async views over the registry (reads) and delivery (writes),
and the issuing of client tokens (tokens.py).

Each view authenticates (api_auth), validates its input (api_input), calls one registry
selector, delivery service or token function, and renders JSON. Every answer is JSON; every
error is `{"code": <stable machine code>, "detail": <for people>}`. The routes, statuses and bodies
are described in openapi.json, which tests check every response against.

"""

import json
import logging
import time
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from realtime.core.connection import Connection, is_connection_id, isoformat
from realtime.core.logs import event
from realtime.core.tokens import MIN_SECRET_LENGTH, is_usable_secret, issue_token, token_expiry
from realtime.operate.api import parse
from realtime.operate.api.auth import Principal, authenticate
from realtime.operate.api.parse import ApiError
from realtime.operate.delivery import (
    ConnectionGone,
    ConnectionNotFound,
    DeliveryError,
    DeliveryUnavailable,
    HolderNotResponding,
    connection_disconnect,
    connection_send,
    connections_broadcast,
)
from realtime.registry import InvalidCursor, RegistryError
from realtime.server.runtime import runtime

__all__ = [
    "broadcasts",
    "connection",
    "connection_json",
    "connection_messages",
    "connections",
    "instances",
    "not_found",
    "openapi_document",
    "stats",
    "tokens",
]

logger = logging.getLogger(__name__)

OPENAPI_PATH = Path(__file__).with_name("openapi.json")

_DELIVERY_CODES = {
    ConnectionNotFound: "connection_not_found",
    ConnectionGone: "connection_gone",
    HolderNotResponding: "holder_not_responding",
    DeliveryUnavailable: "delivery_unavailable",
}

Handler = Callable[..., Awaitable[dict]]


# --- rendering ----------------------------------------------------------------------------


def connection_json(record: Connection) -> dict:
    """A connection as the API shows it (Connection.operator_fields)."""
    return record.operator_fields()


def _response(status: int, payload: dict, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(payload, status=status, headers=headers)
    response["Cache-Control"] = "no-store"  # live state, and possibly behind credentials
    return response


def _error(status: int, code: str, detail: str, headers: dict | None = None) -> JsonResponse:
    return _response(status, {"code": code, "detail": detail}, headers)


# --- the one wrapper every endpoint goes through -----------------------------------------


def _endpoint(*, public: bool = False, **handlers: Handler):
    """A view that dispatches on method to `handlers` (`get=`, `post=`, `delete=`).

    Order: 405 for another method, 413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, then
    authentication (unless `public`), then the handler. A handler returns the 200 body or
    raises ApiError, DeliveryError or RegistryError, mapped here to statuses.
    """
    methods = {name.upper(): handler for name, handler in handlers.items()}

    # Token requests carry no cookies, so CSRF cannot reach them; session requests are
    # checked by api_auth, with Django's own CSRF check.
    @csrf_exempt
    async def view(request: HttpRequest, **kwargs) -> JsonResponse:
        handler = methods.get(request.method)
        if handler is None:
            return _error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; allowed: {', '.join(methods)}",
                {"Allow": ", ".join(methods)},
            )
        try:
            # Read the body before the CSRF check: once it parses a form body, the raw body
            # can no longer be read (and a body over Django's limit is a 413 either way).
            _ = request.body
            principal = None if public else await authenticate(request)
            return _response(200, await handler(request, principal, **kwargs))
        except RequestDataTooBig:
            return _error(
                413, "payload_too_large", "request body exceeds DATA_UPLOAD_MAX_MEMORY_SIZE"
            )
        except ApiError as exc:
            return _error(exc.status, exc.code, exc.detail, exc.headers)
        except InvalidCursor:
            return _error(400, "invalid_cursor", "cursor is not valid for this query")
        except DeliveryError as exc:
            return _delivery_error(exc)
        except RegistryError as exc:
            return _registry_error(exc)
        except Exception:
            # Logged with its traceback; the client learns nothing of the internals.
            logger.exception(event("api.internal_error", method=request.method, path=request.path))
            return _error(500, "internal_error", "internal error; see the server's log")

    return view


def _delivery_error(exc: DeliveryError) -> JsonResponse:
    if isinstance(exc, DeliveryUnavailable) and isinstance(exc.__cause__, RegistryError):
        # The same outage answers the same way, whichever path met it.
        return _registry_error(exc.__cause__)
    code = next((c for kind, c in _DELIVERY_CODES.items() if isinstance(exc, kind)), None)
    if exc.status >= 500:
        logger.warning(event("api.delivery_failed", status=exc.status, error=exc))
    return _error(exc.status, code or "delivery_failed", str(exc))


def _registry_error(exc: RegistryError) -> JsonResponse:
    reason = getattr(exc, "reason", "")
    logger.warning(event("api.registry_unavailable", error=exc))
    return _error(
        503,
        "registry_unavailable",
        f"the connection registry is unavailable{f' ({reason})' if reason else ''}; "
        "try again later",
    )


# --- handlers -----------------------------------------------------------------------------


async def _list_connections(request: HttpRequest, principal: Principal) -> dict:
    query = parse.parse_list_query(dict(request.GET.lists()))
    if query.scope is not None:
        page = await runtime().registry.afor_tenant(
            query.scope.tenant,
            deployment_id=query.scope.deployment_id,
            connection_type=query.scope.connection_type,
            limit=query.limit,
            cursor=query.cursor,
        )
        records, cursor = page.connections, page.cursor
    else:
        page = await runtime().registry.ainstance_page(
            query.instance_id, limit=query.limit, cursor=query.cursor
        )
        records, cursor = page.connections, page.cursor
    return {"connections": [connection_json(r) for r in records], "next_cursor": cursor}


async def _get_connection(request: HttpRequest, principal: Principal, connection_id: str) -> dict:
    _known_id(connection_id)
    record = await runtime().registry.aget(connection_id)
    if record is None:
        raise ConnectionNotFound(f"no live connection {connection_id}")
    return connection_json(record)


async def _send_message(request: HttpRequest, principal: Principal, connection_id: str) -> dict:
    data = parse.parse_message(
        request.content_type,
        request.content_params,
        request.body,
        max_bytes=settings.WS_MAX_MESSAGE_BYTES,
    )
    _known_id(connection_id)
    await connection_send(connection_id, data)
    logger.info(event("api.message_sent", connection_id=connection_id, by=principal.label))
    return {"connection_id": connection_id, "delivered": True}


async def _disconnect(request: HttpRequest, principal: Principal, connection_id: str) -> dict:
    code = parse.parse_disconnect(request.content_type, request.content_params, request.body)
    _known_id(connection_id)
    await connection_disconnect(connection_id, code=code)
    logger.info(
        event("api.disconnected", connection_id=connection_id, code=code, by=principal.label)
    )
    return {"connection_id": connection_id, "disconnected": True}


async def _broadcast(request: HttpRequest, principal: Principal) -> dict:
    broadcast = parse.parse_broadcast(
        request.content_type,
        request.content_params,
        request.body,
        max_bytes=settings.WS_MAX_MESSAGE_BYTES,
    )
    scope = broadcast.scope
    targeted = await connections_broadcast(
        tenant=scope.tenant,
        deployment_id=scope.deployment_id,
        connection_type=scope.connection_type,
        data=broadcast.data,
    )
    logger.info(
        event(
            "api.broadcast",
            tenant=scope.tenant,
            deployment_id=scope.deployment_id or "-",
            connection_type=scope.connection_type or "-",
            targeted=targeted,
            by=principal.label,
        )
    )
    return {"targeted": targeted}


async def _stats(request: HttpRequest, principal: Principal) -> dict:
    tenant = parse.parse_stats_query(dict(request.GET.lists()))
    counts = await runtime().registry.acounts(tenant=tenant)
    tenants = {}
    for name, deployments in sorted(counts.items()):
        rendered = {
            deployment: {"total": sum(types.values()), "types": dict(sorted(types.items()))}
            for deployment, types in sorted(deployments.items())
        }
        tenants[name] = {
            "total": sum(d["total"] for d in rendered.values()),
            "deployments": rendered,
        }
    return {"total": sum(t["total"] for t in tenants.values()), "tenants": tenants}


async def _list_instances(request: HttpRequest, principal: Principal) -> dict:
    parse.parse_instances_query(dict(request.GET.lists()))
    leases = await runtime().registry.aleases()  # oldest first
    return {"instances": [lease.operator_fields() for lease in leases]}


async def _issue_token(request: HttpRequest, principal: Principal) -> dict:
    secret = settings.WS_TOKEN_SECRET
    if not is_usable_secret(secret):
        # 503, not 4xx: the request is fine, this server is not set up to answer it (and the
        # caller cannot fix that). Checked first: nothing else about the request matters.
        raise ApiError(
            503,
            "tokens_disabled",
            f"this server issues no tokens: WS_TOKEN_SECRET ({MIN_SECRET_LENGTH}+ characters) "
            "is not set",
        )
    wanted = parse.parse_token_request(
        request.content_type,
        request.content_params,
        request.body,
        max_ttl_seconds=settings.WS_TOKEN_MAX_TTL_SECONDS,
        allowed_connection_types=settings.WS_CONNECTION_TYPES,
    )
    now = time.time()
    token = issue_token(wanted.request, secret=secret, ttl_seconds=wanted.ttl_seconds, now=now)
    logger.info(  # who asked for what; never the token
        event(
            "api.token_issued",
            tenant=wanted.request.tenant,
            deployment_id=wanted.request.deployment_id,
            connection_type=wanted.request.connection_type,
            ttl_seconds=wanted.ttl_seconds,
            by=principal.label,
        )
    )
    expires_at = token_expiry(ttl_seconds=wanted.ttl_seconds, now=now)
    return {"token": token, "expires_at": isoformat(expires_at)}


def _known_id(connection_id: str) -> None:
    # An id that was never issued cannot be live: 404 without a registry call.
    if not is_connection_id(connection_id):
        raise ConnectionNotFound(f"no live connection {connection_id}")


@cache
def _openapi(max_ttl_seconds: int, connection_types: tuple[str, ...]) -> dict:
    """The API's document as this server's settings make it: exactly as strict as the server
    (the longest token it issues, the connection types it accepts)."""
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    token = document["components"]["schemas"]["TokenRequest"]["properties"]
    token["ttl_seconds"]["maximum"] = max_ttl_seconds
    if connection_types:
        token["connection_type"] = {**token["connection_type"], "enum": list(connection_types)}
    return document


async def _openapi_document(request: HttpRequest, principal: None) -> dict:
    return _openapi(settings.WS_TOKEN_MAX_TTL_SECONDS, tuple(sorted(settings.WS_CONNECTION_TYPES)))


# --- views (routed in urls.py) --------------------------------------------------------

connections = _endpoint(get=_list_connections)
connection = _endpoint(get=_get_connection, delete=_disconnect)
connection_messages = _endpoint(post=_send_message)
broadcasts = _endpoint(post=_broadcast)
stats = _endpoint(get=_stats)
instances = _endpoint(get=_list_instances)
tokens = _endpoint(post=_issue_token)
openapi_document = _endpoint(public=True, get=_openapi_document)


@csrf_exempt
async def not_found(request: HttpRequest, **kwargs) -> JsonResponse:
    """Any other path under /api/, any method: a JSON 404 rather than Django's HTML page."""
    return _error(404, "not_found", f"no API endpoint at {request.path}; see /api/openapi.json")
