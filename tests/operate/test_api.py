"""The management API in-process: Django's AsyncClient, moto's mocked DynamoDB, real consumers.

Every response any test receives is checked against realtime/openapi.json (CheckedClient):
an undocumented status or a body that does not match its schema fails the test. A scenario
runs consumers and requests in one event loop, so that they share the in-memory channel layer.
"""

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from urllib.parse import quote

import pytest
from asgiref.sync import ThreadSensitiveContext, async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import AsyncClient
from openapi_spec_validator import validate as validate_openapi

import realtime.operate.api.auth
from realtime.core import close_codes, handshake
from realtime.core.connection import OPERATOR_FIELDS, Connection, isoformat
from realtime.core.handshake import ConnectionRequest
from realtime.operate.api.auth import match_token
from realtime.registry import RegistryUnavailable
from realtime.registry.dynamodb import DynamoDBRegistry
from realtime.server.consumer import ConnectionConsumer
from realtime.server.runtime import runtime
from tests.api_contract import DOCUMENT, check_response, schema_errors
from tests.conftest import use_registry

TOKEN = "first-token-0123456789abcdef"
OTHER_TOKEN = "second-token-fedcba9876543210"
WS_PATH = "/?tenant={}&deployment_id={}&connection_type={}"


class CheckedClient(AsyncClient):
    """AsyncClient whose every response must be documented in the OpenAPI document.

    `headers` go with every request. (Django 6.1's AsyncClient(headers=...) sends them
    mangled: `Authorization` arrives as META["HTTP_HTTP_AUTHORIZATION"].)
    """

    def __init__(self, *, headers: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.always = headers or {}

    def generic(self, method, path, *args, headers=None, **kwargs):
        return super().generic(
            method, path, *args, headers={**self.always, **(headers or {})}, **kwargs
        )

    async def request(self, **request):
        # As Django's ASGIHandler does for every request: sync code of this request (the
        # project has a sync-only middleware) gets an executor of its own instead of blocking
        # the shared one that consumers use while the view waits for them.
        async with ThreadSensitiveContext():
            response = await super().request(**request)
        response.payload = check_response(
            request["method"],
            request["path"],
            response.status_code,
            dict(response.headers),
            response.content,
        )
        return response


@pytest.fixture
def registry(aws, mocked_client, settings, monkeypatch) -> DynamoDBRegistry:
    settings.API_TOKENS = [TOKEN, OTHER_TOKEN]
    settings.DELIVERY_TIMEOUT_SECONDS = 0.3
    registry = DynamoDBRegistry(client=mocked_client, table_name=settings.DYNAMODB_TABLE_NAME)
    registry.create_table()
    use_registry(registry)
    return registry


def api(token: str | None = TOKEN, **kwargs) -> CheckedClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return CheckedClient(headers=headers, **kwargs)


def run(scenario):
    """Run `scenario()` (an async function) in a fresh event loop; returns its result."""
    return asyncio.run(scenario())


def run_here(scenario):
    """Like `run`, for tests that use the database: Django's thread-sensitive code (sessions,
    users) then runs on this thread, the one holding the test's transaction. Not for
    consumers: outside channels.testing's patch they close "old" database connections,
    which pytest-django forbids on this thread."""
    return async_to_sync(scenario)()


def call(
    method: str,
    path: str,
    *,
    body=None,
    client: CheckedClient | None = None,
    runner=run,
    **kwargs,
):
    """One request; `body` is sent as JSON unless it is bytes or str."""

    async def scenario():
        return await _send(client or api(), method, path, body, **kwargs)

    return runner(scenario)


async def _send(client: CheckedClient, method: str, path: str, body=None, **kwargs):
    if body is not None:
        kwargs.setdefault("content_type", "application/json")
        kwargs["data"] = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return await client.generic(method, path, **kwargs)


def record(
    registry: DynamoDBRegistry,
    tenant: str = "acme",
    deployment: str = "prod-1",
    kind: str = "client",
    *,
    expires_in: int = 3600,
    instance: str = "host-1-abcd",
    channel: str = "specific.elsewhere!1",
) -> Connection:
    """An item written straight through the registry (no consumer behind it)."""
    connection = Connection.open(
        ConnectionRequest(tenant, deployment, kind),
        now=time.time(),
        ttl_seconds=3600,
        instance_id=instance,
        channel_name=channel,
        client_addr="127.0.0.1:1",
    )
    connection = dataclasses.replace(connection, expires_at=int(time.time()) + expires_in)
    registry.register(connection)
    return connection


def orphan(registry: DynamoDBRegistry) -> Connection:
    """An item of this process whose consumer does not exist, as a crashed consumer leaves."""
    return record(registry, instance=runtime().instance_id, channel="specific.nobody!listening")


async def open_client(tenant="acme", deployment="prod-1", kind="client"):
    client = WebsocketCommunicator(
        ConnectionConsumer.as_asgi(), WS_PATH.format(tenant, deployment, kind)
    )
    connected, _ = await client.connect()
    assert connected
    message = await client.receive_json_from()
    assert message["type"] == "connected"
    return client, message["connection_id"]


def error(response) -> tuple[int, str]:
    return response.status_code, response.payload["code"]


# --- the document ---------------------------------------------------------------------------


def test_openapi_document_is_valid_and_served_without_credentials(registry):
    validate_openapi(DOCUMENT)
    response = call("GET", "/api/openapi.json", client=api(token=None))
    assert response.status_code == 200
    assert response.payload == DOCUMENT


def test_openapi_connection_schema_is_the_records_operator_fields():
    schema = DOCUMENT["components"]["schemas"]["Connection"]
    assert tuple(schema["properties"]) == OPERATOR_FIELDS
    assert tuple(schema["required"]) == OPERATOR_FIELDS


def test_openapi_value_rule_is_the_handshakes():
    assert DOCUMENT["components"]["schemas"]["Value"]["pattern"] == f"^{handshake.VALUE_PATTERN}$"


def test_contract_checker_fails_on_undocumented_answers():
    error_body = json.dumps({"code": "x", "detail": "y"}).encode()
    json_headers = {"Content-Type": "application/json"}
    with pytest.raises(AssertionError, match="documented"):
        check_response("GET", "/api/stats", 418, json_headers, error_body)
    with pytest.raises(AssertionError, match="does not match"):
        check_response("GET", "/api/stats", 200, json_headers, b'{"total": -1, "tenants": {}}')
    with pytest.raises(AssertionError, match="WWW-Authenticate"):
        check_response("GET", "/api/stats", 401, json_headers, error_body)


def test_documented_request_schemas_agree_with_validation():
    assert schema_errors("BroadcastRequest", {"tenant": "acme", "data": None}) == []
    assert schema_errors("BroadcastRequest", {"tenant": "acme", "connection_type": "c", "data": 1})
    assert schema_errors("DisconnectRequest", {"code": 3999})
    assert schema_errors("MessageRequest", {"data": 1, "extra": 2})


# --- authentication -------------------------------------------------------------------------


def test_no_credentials_is_401_with_a_bearer_challenge(registry):
    response = call("GET", "/api/stats", client=api(token=None))
    assert error(response) == (401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="realtime-api"'


def test_wrong_token_is_401_and_never_logged(registry, caplog):
    caplog.set_level(logging.INFO)
    response = call("GET", "/api/stats", client=api(token="wrong-token-secret-value"))
    assert error(response) == (401, "invalid_token")
    assert response["WWW-Authenticate"] == 'Bearer realm="realtime-api", error="invalid_token"'
    assert "api.auth_failed reason=invalid_token" in caplog.text
    assert "wrong-token-secret-value" not in caplog.text


@pytest.mark.parametrize("token", [TOKEN, OTHER_TOKEN], ids=["first", "second"])
def test_each_configured_token_is_accepted(registry, token):
    response = call("GET", "/api/stats", client=api(token=token))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", f"Bearer {TOKEN} extra", f"bearer\t{TOKEN}"],
    ids=["no-token", "empty-token", "two-words", "tab"],
)
def test_malformed_bearer_header_is_401(registry, header):
    response = call("GET", "/api/stats", client=CheckedClient(headers={"Authorization": header}))
    assert error(response) == (401, "invalid_token")
    assert response["WWW-Authenticate"] == 'Bearer realm="realtime-api", error="invalid_request"'


def test_scheme_is_case_insensitive(registry):
    client = CheckedClient(headers={"Authorization": f"bEaReR {TOKEN}"})
    assert call("GET", "/api/stats", client=client).status_code == 200


def test_another_scheme_is_not_ours_and_falls_back_to_the_session(registry):
    client = CheckedClient(headers={"Authorization": f"Basic {TOKEN}"})
    assert error(call("GET", "/api/stats", client=client)) == (401, "not_authenticated")


def test_no_configured_tokens_accept_no_token(registry, settings):
    settings.API_TOKENS = []
    assert error(call("GET", "/api/stats")) == (401, "invalid_token")


def test_token_is_compared_with_every_configured_token(monkeypatch):
    compared = []

    def counting(a, b):
        compared.append(b)
        return a == b

    monkeypatch.setattr(realtime.operate.api.auth.hmac, "compare_digest", counting)
    tokens = ["a-token", "b-token", "c-token"]
    assert match_token("a-token", tokens) == 1
    assert compared == [b"a-token", b"b-token", b"c-token"]
    assert match_token("c-token", tokens) == 3
    assert match_token("x-token", tokens) is None
    assert match_token("x-token", []) is None


def staff(username="operator"):
    # No password: force_login needs none, and hashing one costs a third of a second.
    return get_user_model().objects.create_user(username, is_staff=True)


@pytest.mark.django_db
def test_staff_session_can_read(registry):
    client = api(token=None)
    client.force_login(staff())
    assert call("GET", "/api/stats", client=client, runner=run_here).status_code == 200


@pytest.mark.django_db
def test_staff_session_post_without_csrf_token_is_403(registry):
    client = api(token=None, enforce_csrf_checks=True)
    client.force_login(staff())
    response = call(
        "POST",
        "/api/broadcasts",
        body={"tenant": "acme", "data": 1},
        client=client,
        runner=run_here,
    )
    assert error(response) == (403, "csrf_failed")
    assert response.payload["detail"] == "CSRF check failed: CSRF cookie not set."


@pytest.mark.django_db
def test_staff_session_post_with_csrf_token_is_accepted(registry):
    client = api(token=None, enforce_csrf_checks=True)
    client.force_login(staff())
    secret = "a" * 32
    client.cookies["csrftoken"] = secret
    response = call(
        "POST",
        "/api/broadcasts",
        body={"tenant": "acme", "data": 1},
        client=client,
        runner=run_here,
        headers={"X-CSRFToken": secret},
    )
    assert response.status_code == 200
    assert response.payload == {"targeted": 0}


def test_token_requests_are_csrf_exempt(registry):
    client = api(enforce_csrf_checks=True)
    response = call("POST", "/api/broadcasts", body={"tenant": "acme", "data": 1}, client=client)
    assert response.payload == {"targeted": 0}


@pytest.mark.django_db
def test_non_staff_session_is_403(registry):
    client = api(token=None)
    client.force_login(get_user_model().objects.create_user("visitor"))
    assert error(call("GET", "/api/stats", client=client, runner=run_here)) == (403, "forbidden")


@pytest.mark.django_db
def test_inactive_staff_session_is_not_authenticated(registry):
    client = api(token=None)
    user = staff()
    client.force_login(user)
    user.is_active = False
    user.save()
    assert error(call("GET", "/api/stats", client=client, runner=run_here)) == (
        401,
        "not_authenticated",
    )


def test_errors_of_routing_come_before_authentication(registry):
    response = call("PUT", "/api/connections", client=api(token=None))
    assert error(response) == (405, "method_not_allowed")
    assert response["Allow"] == "GET"
    assert call("POST", "/api/stats").status_code == 405
    assert call("GET", "/api/connections/x/messages")["Allow"] == "POST"
    assert error(call("GET", "/api/nothing-here", client=api(token=None))) == (404, "not_found")
    assert error(call("GET", "/api/connections/")) == (404, "not_found")


# --- listing ----------------------------------------------------------------------------


def listing(query: str, client=None):
    return call("GET", f"/api/connections?{query}", client=client)


def ids(response) -> list[str]:
    return [c["connection_id"] for c in response.payload["connections"]]


def test_connection_json_has_every_public_field_and_no_channel_name(registry):
    item = record(registry)
    response = listing("tenant=acme")
    assert response.payload == {
        "connections": [
            {
                "connection_id": item.connection_id,
                "tenant": "acme",
                "deployment_id": "prod-1",
                "connection_type": "client",
                "connected_at": item.connected_at,
                "expires_at": isoformat(item.expires_at),
                "instance_id": "host-1-abcd",
                "client_addr": "127.0.0.1:1",
            }
        ],
        "next_cursor": None,
    }
    assert response["Cache-Control"] == "no-store"


def test_listing_narrows_by_deployment_then_type(registry):
    made = {
        name: record(registry, *name.split("/")).connection_id
        for name in (
            "acme/prod-1/client",
            "acme/prod-1/worker",
            "acme/prod-10/client",
            "beta/prod-1/client",
        )
    }
    assert set(ids(listing("tenant=acme"))) == {
        made["acme/prod-1/client"],
        made["acme/prod-1/worker"],
        made["acme/prod-10/client"],
    }
    assert set(ids(listing("tenant=acme&deployment_id=prod-1"))) == {
        made["acme/prod-1/client"],
        made["acme/prod-1/worker"],
    }
    assert ids(listing("tenant=acme&deployment_id=prod-1&connection_type=worker")) == [
        made["acme/prod-1/worker"]
    ]
    assert ids(listing("tenant=nobody")) == []


def test_pagination_returns_every_item_once(registry):
    made = {record(registry).connection_id for _ in range(7)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "tenant=acme&deployment_id=prod-1&limit=3" + (
            f"&cursor={quote(cursor)}" if cursor else ""
        )
        response = listing(query)
        assert len(response.payload["connections"]) <= 3
        seen += ids(response)
        pages += 1
        cursor = response.payload["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(made)  # every one, none twice


def test_listing_by_instance_pages_in_connection_id_order(registry):
    made = sorted(record(registry, instance="host-9-beef").connection_id for _ in range(5))
    record(registry, instance="host-2-abcd")
    first = listing("instance_id=host-9-beef&limit=2")
    assert ids(first) == made[:2]
    second = listing(f"instance_id=host-9-beef&limit=2&cursor={first.payload['next_cursor']}")
    assert ids(second) == made[2:4]
    third = listing(f"instance_id=host-9-beef&limit=2&cursor={second.payload['next_cursor']}")
    assert (ids(third), third.payload["next_cursor"]) == (made[4:], None)
    exact = listing("instance_id=host-9-beef&limit=5")
    assert (ids(exact), exact.payload["next_cursor"]) == (made, None)


def test_expired_items_are_never_shown(registry):
    # Both held by this process, so that a broadcast would reach (and count) either.
    live = record(registry, instance=runtime().instance_id, channel="specific.live!1")
    expired = record(
        registry, instance=runtime().instance_id, channel="specific.expired!1", expires_in=-10
    )
    assert ids(listing("tenant=acme")) == [live.connection_id]
    assert ids(listing(f"instance_id={runtime().instance_id}")) == [live.connection_id]
    assert error(call("GET", f"/api/connections/{expired.connection_id}")) == (
        404,
        "connection_not_found",
    )
    assert error(
        call("POST", f"/api/connections/{expired.connection_id}/messages", body={"data": 1})
    ) == (404, "connection_not_found")
    assert error(call("DELETE", f"/api/connections/{expired.connection_id}")) == (
        404,
        "connection_not_found",
    )
    assert call("GET", "/api/stats").payload["total"] == 1
    assert call("POST", "/api/broadcasts", body={"tenant": "acme", "data": 1}).payload == {
        "targeted": 1
    }


@pytest.mark.parametrize(
    ("query", "code", "detail"),
    [
        ("", "missing_parameter", "give tenant (or instance_id) to list connections"),
        (
            "deployment_id=prod-1",
            "missing_parameter",
            "give tenant (or instance_id) to list connections",
        ),
        (
            "tenant=acme&connection_type=client",
            "missing_parameter",
            "query parameter 'connection_type' narrows a deployment: give 'deployment_id' too",
        ),
        (
            "tenant=ac%20me",
            "invalid_parameter",
            f"query parameter 'tenant' must be {handshake.VALUE_RULE}",
        ),
        (
            "tenant=a%23b",
            "invalid_parameter",
            f"query parameter 'tenant' must be {handshake.VALUE_RULE}",
        ),
        (
            "tenant=",
            "invalid_parameter",
            f"query parameter 'tenant' must be {handshake.VALUE_RULE}",
        ),
        (
            "tenant=" + "a" * 129,
            "invalid_parameter",
            f"query parameter 'tenant' must be {handshake.VALUE_RULE}",
        ),
        (
            "tenant=acme&deployment_id=pr%C3%B6d",
            "invalid_parameter",
            f"query parameter 'deployment_id' must be {handshake.VALUE_RULE}",
        ),
        ("tenant=acme&limit=0", "invalid_parameter", "limit must be an integer from 1 to 1000"),
        ("tenant=acme&limit=1001", "invalid_parameter", "limit must be an integer from 1 to 1000"),
        ("tenant=acme&limit=%2B5", "invalid_parameter", "limit must be an integer from 1 to 1000"),
        ("tenant=acme&limit=ten", "invalid_parameter", "limit must be an integer from 1 to 1000"),
        ("tenant=acme&cursor=", "invalid_cursor", "cursor is not valid for this query"),
        (
            "tenant=acme&cursor=bm90LWEtY3Vyc29y",
            "invalid_cursor",
            "cursor is not valid for this query",
        ),
        (
            "instance_id=h-1&cursor=not-an-id",
            "invalid_cursor",
            "cursor is not valid for this query",
        ),
        (
            "tenant=acme&tenant=beta",
            "repeated_parameter",
            "query parameter 'tenant' must be given once",
        ),
        (
            "tenant=acme&deployment=prod-1&zz=1",
            "unknown_parameter",
            "unknown query parameter(s): deployment, zz; accepted: connection_type, cursor, "
            "deployment_id, instance_id, limit, tenant",
        ),
        (
            "instance_id=h-1&tenant=acme",
            "invalid_parameter",
            "instance_id cannot be combined with tenant: list by tenant or by instance",
        ),
        (
            "instance_id=a%20b",
            "invalid_parameter",
            "instance_id must be 1..256 visible ASCII characters",
        ),
    ],
)
def test_invalid_listing_queries_are_400(registry, query, code, detail):
    response = listing(query)
    assert response.status_code == 400
    assert response.payload == {"code": code, "detail": detail}


def test_cursor_of_another_query_is_400(registry):
    for _ in range(3):
        record(registry)
    cursor = quote(listing("tenant=acme&limit=1").payload["next_cursor"])
    assert listing(f"tenant=acme&limit=1&cursor={cursor}").status_code == 200
    assert error(listing(f"tenant=beta&cursor={cursor}")) == (400, "invalid_cursor")
    assert error(listing(f"tenant=acme&deployment_id=prod-2&cursor={cursor}")) == (
        400,
        "invalid_cursor",
    )


def test_limit_bounds_are_accepted(registry):
    record(registry)
    assert len(ids(listing("tenant=acme&limit=1"))) == 1
    assert len(ids(listing("tenant=acme&limit=1000"))) == 1


# --- get one ------------------------------------------------------------------------------


def test_get_one(registry):
    item = record(registry)
    response = call("GET", f"/api/connections/{item.connection_id}")
    assert response.status_code == 200
    assert response.payload["connection_id"] == item.connection_id
    assert response.payload["expires_at"] == isoformat(item.expires_at)


@pytest.mark.parametrize("connection_id", [str(uuid.uuid4()), "not-a-uuid", "A" * 3000])
def test_get_unknown_is_404(registry, connection_id):
    response = call("GET", f"/api/connections/{connection_id}")
    assert response.payload == {
        "code": "connection_not_found",
        "detail": f"no live connection {connection_id}",
    }


def test_get_after_the_client_left_is_404(registry):
    async def scenario():
        client, connection_id = await open_client()
        http = api()
        assert (await http.get(f"/api/connections/{connection_id}")).status_code == 200
        await client.disconnect()
        return (await http.get(f"/api/connections/{connection_id}")).status_code

    assert run(scenario) == 404


# --- send ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [{"hello": ["world", 1, 2.5, None, True]}, "text", None, [1, [2, [3]]], 0],
    ids=["object", "string", "null", "array", "zero"],
)
def test_send_reaches_the_client_as_a_message_frame(registry, data, caplog):
    caplog.set_level(logging.INFO)

    async def scenario():
        client, connection_id = await open_client()
        response = await _send(
            api(), "POST", f"/api/connections/{connection_id}/messages", {"data": data}
        )
        assert response.status_code == 200
        assert response.payload == {"connection_id": connection_id, "delivered": True}
        assert await client.receive_json_from() == {"type": "message", "data": data}
        await client.disconnect()
        return connection_id

    connection_id = run(scenario)
    assert f"api.message_sent connection_id={connection_id} by=token:1" in caplog.text


def test_send_to_unknown_connection_is_404(registry):
    response = call("POST", f"/api/connections/{uuid.uuid4()}/messages", body={"data": 1})
    assert error(response) == (404, "connection_not_found")
    assert error(call("POST", "/api/connections/nope/messages", body={"data": 1}))[0] == 404


def test_send_to_an_orphaned_item_is_410_and_removes_it(registry):
    item = orphan(registry)
    response = call("POST", f"/api/connections/{item.connection_id}/messages", body={"data": 1})
    assert error(response) == (410, "connection_gone")
    assert registry.get(item.connection_id) is None
    # Now it is simply not there.
    again = call("POST", f"/api/connections/{item.connection_id}/messages", body={"data": 1})
    assert error(again) == (404, "connection_not_found")


def test_send_to_a_connection_the_channel_layer_cannot_reach_is_503(registry):
    item = record(registry, instance="another-host-1-abcd")
    response = call("POST", f"/api/connections/{item.connection_id}/messages", body={"data": 1})
    assert error(response) == (503, "delivery_unavailable")
    assert "REDIS_URL" in response.payload["detail"]


def message_to(registry, body=None, **kwargs):
    """POST to a live record's messages (validation comes before delivery)."""
    item = record(registry)
    return call("POST", f"/api/connections/{item.connection_id}/messages", body=body, **kwargs)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('{"data": NaN}', "request body: NaN is not valid JSON"),
        ('{"data": [Infinity]}', "request body: Infinity is not valid JSON"),
        ('{"data": {"x": -Infinity}}', "request body: -Infinity is not valid JSON"),
        ('{"data": 1e400}', "request body: number 1e400 is out of range"),
        (
            '{"data": ',
            "request body: message is not valid JSON: Expecting value: line 1 column 10 (char 9)",
        ),
        (
            '{"data": ' + "[" * 128 + "]" * 128 + "}",
            "request body: message is nested too deeply (more than 128 levels)",
        ),
    ],
    ids=["nan", "infinity", "minus-infinity", "out-of-range", "truncated", "too-deep"],
)
def test_send_rejects_what_clients_may_not_send_either(registry, text, detail):
    response = message_to(registry, text)
    assert response.status_code == 400
    assert response.payload == {"code": "invalid_json", "detail": detail}


def test_send_accepts_nesting_up_to_the_protocol_limit(registry):
    deepest = "[" * 127 + "]" * 127  # the body object is the 128th level
    assert message_to(registry, '{"data": ' + deepest + "}").status_code == 503  # held elsewhere


OUT_OF_64_BITS = (
    "field 'data' holds an integer outside the 64-bit range "
    "(-9223372036854775808..18446744073709551615); send it as a string"
)


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        (
            {"data": 1, "extra": 2, "also": 3},
            400,
            "unknown_field",
            "unknown field(s): also, extra; accepted: data",
        ),
        ({}, 400, "missing_field", "missing field(s): data"),
        ([1], 400, "not_an_object", "request body must be a JSON object"),
        ("null", 400, "not_an_object", "request body must be a JSON object"),
        (b'{"data": "\xff"}', 400, "invalid_json", "request body is not UTF-8"),
        (
            {"data": 2**64},
            400,
            "invalid_field",
            OUT_OF_64_BITS,
        ),
        (
            {"data": [-(2**63) - 1]},
            400,
            "invalid_field",
            OUT_OF_64_BITS,
        ),
        (
            '{"data": {"\\ud800": 1}}',
            400,
            "invalid_field",
            "field 'data' holds a string with a lone surrogate (\\ud800-\\udfff)",
        ),
    ],
    ids=[
        "unknown",
        "missing",
        "array",
        "null",
        "not-utf8",
        "int-too-big",
        "int-too-small",
        "surrogate",
    ],
)
def test_send_validates_the_body(registry, body, status, code, detail):
    response = message_to(registry, body)
    assert (response.status_code, response.payload) == (status, {"code": code, "detail": detail})


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_send_needs_a_json_content_type(registry, content_type):
    response = message_to(registry, '{"data": 1}', content_type=content_type)
    assert error(response) == (415, "unsupported_media_type")


def test_send_without_a_body_is_415(registry):
    assert error(message_to(registry)) == (415, "unsupported_media_type")


def test_json_content_type_with_utf8_charset_is_accepted(registry):
    response = message_to(registry, '{"data": 1}', content_type="application/json; charset=UTF-8")
    assert response.status_code == 503  # past validation; the record is held elsewhere


def test_data_over_ws_max_message_bytes_is_413(registry, settings):
    settings.WS_MAX_MESSAGE_BYTES = 20
    at_limit = "x" * 18  # encoded with its quotes: 20 bytes
    assert (
        message_to(registry, {"data": at_limit}).status_code == 503
    )  # accepted, then held elsewhere
    response = message_to(registry, {"data": at_limit + "x"})
    assert response.payload == {
        "code": "payload_too_large",
        "detail": "field 'data' is 21 bytes encoded; the limit is 20 (WS_MAX_MESSAGE_BYTES)",
    }
    assert response.status_code == 413
    # Measured as sent to the client: "é" travels as \u00e9, six bytes.
    assert message_to(registry, {"data": "é" * 4}).status_code == 413


def test_body_over_djangos_upload_limit_is_413(registry, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = message_to(registry, {"data": "x" * 200})
    assert error(response) == (413, "payload_too_large")


# --- disconnect ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected_code"),
    [
        (None, close_codes.CLOSED_BY_OPERATOR),
        ({}, 4000),
        ({"code": 4321}, 4321),
        ({"code": 4999}, 4999),
    ],
    ids=["no-body", "empty-object", "4321", "4999"],
)
def test_disconnect_closes_with_the_code_and_removes_the_item(registry, body, expected_code):
    async def scenario():
        client, connection_id = await open_client()
        response = await _send(api(), "DELETE", f"/api/connections/{connection_id}", body)
        assert response.status_code == 200
        assert response.payload == {"connection_id": connection_id, "disconnected": True}
        assert await client.receive_output(timeout=2) == {
            "type": "websocket.close",
            "code": expected_code,
        }
        return connection_id

    connection_id = run(scenario)
    assert registry.get(connection_id) is None
    assert error(call("GET", f"/api/connections/{connection_id}")) == (404, "connection_not_found")


@pytest.mark.parametrize(
    "code",
    [3999, 5000, 1000, "4000", 4000.5, True, None, [4000]],
)
def test_disconnect_rejects_codes_outside_4000_4999(registry, code):
    # (4000.0 is accepted: to JSON, and to the API's schema, it is the integer 4000.)
    item = record(registry)
    response = call("DELETE", f"/api/connections/{item.connection_id}", body={"code": code})
    assert response.payload == {
        "code": "invalid_field",
        "detail": "field 'code' must be an integer from 4000 to 4999",
    }


def test_disconnect_validates_its_body(registry):
    item = record(registry)
    path = f"/api/connections/{item.connection_id}"
    assert error(call("DELETE", path, body={"code": 4000, "reason": "x"})) == (400, "unknown_field")
    assert error(call("DELETE", path, body="code=4000", content_type="text/plain")) == (
        415,
        "unsupported_media_type",
    )
    assert error(call("DELETE", path, body="{")) == (400, "invalid_json")
    assert registry.get(item.connection_id) is not None


def test_disconnect_unknown_is_404_and_orphan_is_410(registry):
    assert error(call("DELETE", f"/api/connections/{uuid.uuid4()}")) == (
        404,
        "connection_not_found",
    )
    item = orphan(registry)
    assert error(call("DELETE", f"/api/connections/{item.connection_id}")) == (
        410,
        "connection_gone",
    )
    assert registry.get(item.connection_id) is None


# --- broadcast ----------------------------------------------------------------------------


def test_broadcast_targets_exactly_the_selected_connections(registry):
    async def scenario():
        names = (
            "acme/prod-1/client",
            "acme/prod-1/worker",
            "acme/prod-2/client",
            "beta/prod-1/client",
        )
        clients = {name: (await open_client(*name.split("/")))[0] for name in names}
        http = api()

        async def broadcast(**body):
            response = await _send(http, "POST", "/api/broadcasts", body)
            assert response.status_code == 200
            return response.payload["targeted"]

        assert (
            await broadcast(
                tenant="acme", deployment_id="prod-1", connection_type="worker", data="w"
            )
            == 1
        )
        assert await clients["acme/prod-1/worker"].receive_json_from() == {
            "type": "message",
            "data": "w",
        }
        assert await broadcast(tenant="acme", deployment_id="prod-1", data={"n": 1}) == 2
        for name in ("acme/prod-1/client", "acme/prod-1/worker"):
            assert await clients[name].receive_json_from() == {"type": "message", "data": {"n": 1}}
        assert await broadcast(tenant="acme", data=[2]) == 3
        assert await broadcast(tenant="nobody", data=None) == 0
        for name in names[:3]:
            assert await clients[name].receive_json_from() == {"type": "message", "data": [2]}
        for client in clients.values():
            assert await client.receive_nothing(timeout=0.05)
            await client.disconnect()

    run(scenario)


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ({"data": 1}, "missing_field", "missing field(s): tenant"),
        ({"tenant": "acme"}, "missing_field", "missing field(s): data"),
        (
            {"tenant": "acme", "connection_type": "client", "data": 1},
            "missing_field",
            "field 'connection_type' narrows a deployment: give 'deployment_id' too",
        ),
        (
            {"tenant": "ac/me", "data": 1},
            "invalid_field",
            f"field 'tenant' must be {handshake.VALUE_RULE}",
        ),
        (
            {"tenant": "acme", "deployment_id": None, "data": 1},
            "invalid_field",
            f"field 'deployment_id' must be {handshake.VALUE_RULE}",
        ),
        (
            {"tenant": 7, "data": 1},
            "invalid_field",
            f"field 'tenant' must be {handshake.VALUE_RULE}",
        ),
        (
            {"tenant": "acme", "data": 1, "type": "x"},
            "unknown_field",
            "unknown field(s): type; accepted: connection_type, data, deployment_id, tenant",
        ),
    ],
    ids=[
        "no-tenant",
        "no-data",
        "type-without-deployment",
        "bad-tenant",
        "null-deployment",
        "number-tenant",
        "unknown",
    ],
)
def test_broadcast_validates_the_body(registry, body, code, detail):
    response = call("POST", "/api/broadcasts", body=body)
    assert (response.status_code, response.payload) == (400, {"code": code, "detail": detail})


def test_broadcast_data_is_bounded_like_a_message(registry, settings):
    settings.WS_MAX_MESSAGE_BYTES = 10
    response = call("POST", "/api/broadcasts", body={"tenant": "acme", "data": "x" * 9})
    assert error(response) == (413, "payload_too_large")
    response = call("POST", "/api/broadcasts", body='{"tenant": "acme", "data": NaN}')
    assert error(response) == (400, "invalid_json")


# --- stats --------------------------------------------------------------------------------


def test_stats_counts_live_connections_per_tenant_deployment_and_type(registry):
    for name in (
        "acme/prod-1/client",
        "acme/prod-1/client",
        "acme/prod-1/worker",
        "acme/prod-2/client",
        "beta/dev/bot",
    ):
        record(registry, *name.split("/"))
    record(registry, "acme", "prod-1", "client", expires_in=-1)  # expired: not counted
    assert call("GET", "/api/stats").payload == {
        "total": 5,
        "tenants": {
            "acme": {
                "total": 4,
                "deployments": {
                    "prod-1": {"total": 3, "types": {"client": 2, "worker": 1}},
                    "prod-2": {"total": 1, "types": {"client": 1}},
                },
            },
            "beta": {"total": 1, "deployments": {"dev": {"total": 1, "types": {"bot": 1}}}},
        },
    }
    assert call("GET", "/api/stats?tenant=beta").payload == {
        "total": 1,
        "tenants": {
            "beta": {"total": 1, "deployments": {"dev": {"total": 1, "types": {"bot": 1}}}}
        },
    }
    assert call("GET", "/api/stats?tenant=nobody").payload == {"total": 0, "tenants": {}}


def test_stats_validates_its_query(registry):
    assert error(call("GET", "/api/stats?tenant=a%20b")) == (400, "invalid_parameter")
    assert error(call("GET", "/api/stats?deployment_id=x")) == (400, "unknown_parameter")
    assert error(call("GET", "/api/stats?tenant=a&tenant=b")) == (400, "repeated_parameter")


# --- failures -----------------------------------------------------------------------------


def test_registry_outage_is_503_on_every_path(registry, monkeypatch):
    async def unavailable(*args, **kwargs):
        raise RegistryUnavailable("DynamoDB query failed: timeout", reason="timeout")

    for method in ("aget", "afor_tenant", "acounts"):
        monkeypatch.setattr(registry, method, unavailable)
    connection_id = str(uuid.uuid4())
    expected = {
        "code": "registry_unavailable",
        "detail": "the connection registry is unavailable (timeout); try again later",
    }
    for method, path, body in [
        ("GET", "/api/connections?tenant=acme", None),
        ("GET", f"/api/connections/{connection_id}", None),
        ("POST", f"/api/connections/{connection_id}/messages", {"data": 1}),
        ("DELETE", f"/api/connections/{connection_id}", None),
        ("POST", "/api/broadcasts", {"tenant": "acme", "data": 1}),
        ("GET", "/api/stats", None),
    ]:
        response = call(method, path, body=body)
        assert (response.status_code, response.payload) == (503, expected), (method, path)


def test_registry_outage_of_an_instance_listing_is_503(registry, monkeypatch):
    def unavailable(*args, **kwargs):
        raise RegistryUnavailable("DynamoDB query failed: unreachable", reason="unreachable")

    monkeypatch.setattr(registry, "instance_page", unavailable)
    assert error(listing("instance_id=host-1")) == (503, "registry_unavailable")


def test_unexpected_errors_are_500_without_internals(registry, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("internal secret detail")

    monkeypatch.setattr(registry, "acounts", broken)
    response = call("GET", "/api/stats")
    assert (response.status_code, response.payload) == (
        500,
        {"code": "internal_error", "detail": "internal error; see the server's log"},
    )
    assert "internal secret detail" in caplog.text  # logged for operators, not answered
