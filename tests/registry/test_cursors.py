"""Pagination cursors come from outside: one that this registry did not issue for the query is
refused before DynamoDB is asked (realtime/registry/dynamodb/cursors.py). Cursors of another
tenant, deployment or instance are refused on every backend (test_contract.py)."""

import base64
import json

import pytest

from realtime.registry import InvalidCursor
from tests.records import conn, seed
from tests.registry.store import ids


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _key(**overrides):
    key = {
        "connection_id": {"S": "a1"},
        "tenant": {"S": "acme"},
        "scope_key": {"S": "prod#client#a1"},
    }
    return {**key, **overrides}


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        "é",
        _b64(_key())[:-6],  # truncated
        _b64([1, 2, 3]),
        _b64("acme"),
        _b64({k: v for k, v in _key().items() if k != "scope_key"}),
        _b64(_key(extra={"S": "x"})),
        _b64(_key(connection_id={"N": "1"})),
        _b64(_key(connection_id={"S": 5})),  # well-formed JSON, not a DynamoDB string
        _b64(_key(scope_key={"S": ["prod"]})),
        _b64(_key(tenant={"S": "acme2"})),
        base64.urlsafe_b64encode(b"\xff\xfe{}").decode(),
    ],
)
def test_for_tenant_rejects_a_tampered_cursor(dynamodb, spy, cursor):
    seed(dynamodb, [conn("a1"), conn("a2")])
    spy.calls.clear()

    with pytest.raises(InvalidCursor):
        dynamodb.for_tenant("acme", cursor=cursor)
    assert spy.calls == []  # rejected before DynamoDB is asked


def test_for_tenant_accepts_a_well_formed_cursor_of_its_query(dynamodb):
    # The control for the tampered-cursor cases: a key of the right shape is accepted.
    seed(dynamodb, [conn("a1"), conn("a2"), conn("a3")])
    assert ids(dynamodb.for_tenant("acme", cursor=_b64(_key())).connections) == ["a2", "a3"]
