"""POST /api/tokens: client tokens through the management API.

Every response is checked against realtime/openapi.json (tests.test_api.CheckedClient).
The endpoint touches neither DynamoDB nor the channel layer.
"""

import logging
import time

import jwt
import pytest
from openapi_spec_validator import validate as validate_openapi

from realtime.core.connection import isoformat
from realtime.core.handshake import VALUE_RULE, ConnectionRequest, HandshakeError
from realtime.core.tokens import verify_token
from tests.api_contract import DOCUMENT, schema_errors
from tests.operate.test_api import TOKEN, CheckedClient, api, call, error, run_here, staff

SECRET = "api-test-token-secret-0123456789abcdef"
BODY = {"tenant": "acme", "deployment_id": "prod-1", "connection_type": "client"}
REQUEST = ConnectionRequest("acme", "prod-1", "client")
ACCEPTED = "accepted: connection_type, deployment_id, tenant, ttl_seconds"


@pytest.fixture(autouse=True)
def token_settings(settings):
    settings.API_TOKENS = [TOKEN]
    settings.WS_TOKEN_SECRET = SECRET
    settings.WS_TOKEN_MAX_TTL_SECONDS = 86400
    settings.WS_CONNECTION_TYPES = frozenset()
    return settings


def issue(body=None, **kwargs):
    return call("POST", "/api/tokens", body=BODY if body is None else body, **kwargs)


def claims(response) -> dict:
    return jwt.decode(response.payload["token"], options={"verify_signature": False})


# --- issued ---------------------------------------------------------------------------------


def test_issues_a_token_that_admits_exactly_the_request():
    before = time.time()
    response = issue()
    assert response.status_code == 200
    assert set(response.payload) == {"token", "expires_at"}
    token = response.payload["token"]
    verify_token(token, REQUEST, secret=SECRET, now=time.time(), leeway=0)
    issued = claims(response)
    assert int(before) <= issued["iat"] <= time.time()
    assert issued == {**BODY, "iat": issued["iat"], "exp": issued["iat"] + 3600}
    assert response.payload["expires_at"] == isoformat(issued["exp"])
    assert response["Cache-Control"] == "no-store"


def test_issued_token_admits_no_other_request():
    token = issue().payload["token"]
    with pytest.raises(HandshakeError, match="token claim 'tenant' does not match the query"):
        verify_token(
            token, ConnectionRequest("beta", "prod-1", "client"), secret=SECRET, now=time.time()
        )


@pytest.mark.parametrize("ttl", [1, 60, 86400, 60.0])  # 60.0 is 60 to JSON and its schema
def test_ttl_seconds_sets_the_lifetime(ttl):
    issued = claims(issue({**BODY, "ttl_seconds": ttl}))
    assert issued["exp"] - issued["iat"] == ttl


def test_default_lifetime_is_capped_by_the_maximum(token_settings):
    token_settings.WS_TOKEN_MAX_TTL_SECONDS = 300
    issued = claims(issue())
    assert issued["exp"] - issued["iat"] == 300


def test_issuing_is_logged_without_the_token(caplog):
    caplog.set_level(logging.INFO)
    token = issue({**BODY, "ttl_seconds": 60}).payload["token"]
    assert (
        "api.token_issued tenant=acme deployment_id=prod-1 connection_type=client "
        "ttl_seconds=60 by=token:1"
    ) in caplog.text
    for part in token.split("."):
        assert part not in caplog.text


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        (
            {**BODY, "ttl_seconds": 0},
            "invalid_field",
            "field 'ttl_seconds' must be an integer from 1 to 86400 (WS_TOKEN_MAX_TTL_SECONDS)",
        ),
        (
            {**BODY, "ttl_seconds": 86401},
            "invalid_field",
            "field 'ttl_seconds' must be an integer from 1 to 86400 (WS_TOKEN_MAX_TTL_SECONDS)",
        ),
        (
            {**BODY, "ttl_seconds": -1},
            "invalid_field",
            "field 'ttl_seconds' must be an integer from 1 to 86400 (WS_TOKEN_MAX_TTL_SECONDS)",
        ),
        (
            {**BODY, "ttl_seconds": 60.5},
            "invalid_field",
            "field 'ttl_seconds' must be an integer from 1 to 86400 (WS_TOKEN_MAX_TTL_SECONDS)",
        ),
        (
            {**BODY, "ttl_seconds": "60"},
            "invalid_field",
            "field 'ttl_seconds' must be an integer from 1 to 86400 (WS_TOKEN_MAX_TTL_SECONDS)",
        ),
        (
            {**BODY, "ttl_seconds": True},
            "invalid_field",
            "field 'ttl_seconds' must be an integer from 1 to 86400 (WS_TOKEN_MAX_TTL_SECONDS)",
        ),
        (
            {**BODY, "ttl_seconds": None},
            "invalid_field",
            "field 'ttl_seconds' must be an integer from 1 to 86400 (WS_TOKEN_MAX_TTL_SECONDS)",
        ),
        ({**BODY, "tenant": ""}, "invalid_field", f"field 'tenant' must be {VALUE_RULE}"),
        ({**BODY, "tenant": None}, "invalid_field", f"field 'tenant' must be {VALUE_RULE}"),
        (
            {**BODY, "deployment_id": "prod#1"},
            "invalid_field",
            f"field 'deployment_id' must be {VALUE_RULE}",
        ),
        (
            {**BODY, "connection_type": "x" * 129},
            "invalid_field",
            f"field 'connection_type' must be {VALUE_RULE}",
        ),
        (
            {**BODY, "connection_type": ["client"]},
            "invalid_field",
            f"field 'connection_type' must be {VALUE_RULE}",
        ),
        (
            {"tenant": "acme", "deployment_id": "prod-1"},
            "missing_field",
            "missing field(s): connection_type",
        ),
        ({}, "missing_field", "missing field(s): connection_type, deployment_id, tenant"),
        (
            {**BODY, "ttl": 60},
            "unknown_field",
            f"unknown field(s): ttl; {ACCEPTED}",
        ),
        (
            {**BODY, "exp": 1, "aud": "x"},
            "unknown_field",
            f"unknown field(s): aud, exp; {ACCEPTED}",
        ),
        ([BODY], "not_an_object", "request body must be a JSON object"),
        (
            "{",
            "invalid_json",
            "request body: message is not valid JSON: Expecting property name enclosed in "
            "double quotes: line 1 column 2 (char 1)",
        ),
        ('{"tenant": NaN}', "invalid_json", "request body: NaN is not valid JSON"),
        # Which of two values counts depends on the parser: neither is taken.
        (
            '{"tenant": "acme", "deployment_id": "prod-1", "connection_type": "client", '
            '"tenant": "beta"}',
            "invalid_json",
            'request body: key "tenant" is given more than once',
        ),
    ],
)
def test_invalid_bodies_are_400(body, code, detail):
    response = issue(body)
    assert error(response) == (400, code)
    assert response.payload["detail"] == detail


def test_connection_type_this_server_refuses_is_not_issued(token_settings):
    token_settings.WS_CONNECTION_TYPES = frozenset({"browser"})
    response = issue()
    assert error(response) == (400, "invalid_field")
    assert response.payload["detail"] == (
        "field 'connection_type': 'client' is not accepted by this server (WS_CONNECTION_TYPES)"
    )
    assert issue({**BODY, "connection_type": "browser"}).status_code == 200


def test_body_must_be_json():
    response = issue("tenant=acme", content_type="application/x-www-form-urlencoded")
    assert error(response) == (415, "unsupported_media_type")


@pytest.mark.parametrize("secret", ["", "x" * 31], ids=["unset", "too-short"])
def test_without_a_usable_secret_it_is_503_tokens_disabled(token_settings, secret):
    token_settings.WS_TOKEN_SECRET = secret
    response = issue()
    assert error(response) == (503, "tokens_disabled")
    assert response.payload["detail"] == (
        "this server issues no tokens: WS_TOKEN_SECRET (32+ characters) is not set"
    )
    # Nothing else about the request matters then (but authentication comes first).
    assert error(issue({"nonsense": 1})) == (503, "tokens_disabled")
    assert error(issue(client=api(token=None))) == (401, "not_authenticated")


def test_authentication_is_required():
    assert error(issue(client=api(token=None))) == (401, "not_authenticated")
    assert error(issue(client=api(token="not-a-configured-token"))) == (401, "invalid_token")


def test_only_post_is_allowed():
    response = call("GET", "/api/tokens")
    assert error(response) == (405, "method_not_allowed")
    assert response["Allow"] == "POST"
    assert error(call("GET", "/api/tokens/")) == (404, "not_found")


@pytest.mark.django_db
def test_staff_session_with_csrf_token_can_issue():
    client = api(token=None, enforce_csrf_checks=True)
    client.force_login(staff())
    assert error(issue(client=client, runner=run_here)) == (403, "csrf_failed")
    client.cookies["csrftoken"] = "b" * 32
    response = issue(client=client, runner=run_here, headers={"X-CSRFToken": "b" * 32})
    assert response.status_code == 200


def test_token_requests_with_a_bearer_token_are_csrf_exempt():
    client = CheckedClient(headers={"Authorization": f"Bearer {TOKEN}"}, enforce_csrf_checks=True)
    assert issue(client=client).status_code == 200


# --- the document ---------------------------------------------------------------------------


def test_document_stays_valid():
    validate_openapi(DOCUMENT)
    assert "post" in DOCUMENT["paths"]["/tokens"]


def test_documented_schemas_agree_with_validation():
    assert schema_errors("TokenRequest", BODY) == []
    assert schema_errors("TokenRequest", {**BODY, "ttl_seconds": 60}) == []
    assert schema_errors("TokenRequest", {**BODY, "ttl_seconds": 0})
    assert schema_errors("TokenRequest", {**BODY, "ttl_seconds": 1.5})
    assert schema_errors("TokenRequest", {**BODY, "extra": 1})
    assert schema_errors("TokenRequest", {"tenant": "acme", "deployment_id": "prod-1"})
    assert schema_errors("TokenRequest", {**BODY, "tenant": "a#b"})
    assert schema_errors("IssuedToken", {"token": "a.b.c", "expires_at": isoformat(0)}) == []
    assert schema_errors("IssuedToken", {"token": "a.b", "expires_at": isoformat(0)})
    assert schema_errors("IssuedToken", {"token": "a.b.c", "expires_at": "2026-01-01"})
