"""The management API through a real daphne process: real HTTP in, real WebSocket clients out.

Every response is checked against realtime/openapi.json, as in tests/test_api.py.
"""

import json
from urllib.parse import quote

import pytest
from websockets.exceptions import ConnectionClosed

from tests.api_contract import DOCUMENT, OTHER_TOKEN, TOKEN, Api
from tests.e2e.conftest import wait_until


def query(tenant: str, deployment_id: str, connection_type: str) -> dict:
    return {"tenant": tenant, "deployment_id": deployment_id, "connection_type": connection_type}


def all_pages(api: Api, path: str) -> list[str]:
    """Connection ids of every page, following next_cursor."""
    ids: list[str] = []
    cursor = None
    while True:
        status, _, page = api("GET", path + (f"&cursor={quote(cursor)}" if cursor else ""))
        assert status == 200
        ids += [c["connection_id"] for c in page["connections"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture
def api_server(start_server):
    return start_server(API_TOKENS=f"{TOKEN},{OTHER_TOKEN}")


def test_list_get_send_broadcast_disconnect_and_stats(api_server):
    api = Api(api_server.port)
    client, client_id = api_server.open_client(query("acme", "prod-1", "client"))
    worker, worker_id = api_server.open_client(query("acme", "prod-1", "worker"))
    other, other_id = api_server.open_client(query("beta", "dev", "client"))

    listed = all_pages(api, "/api/connections?tenant=acme&limit=1")
    assert sorted(listed) == sorted([client_id, worker_id])

    status, _, record = api("GET", f"/api/connections/{worker_id}")
    assert status == 200
    assert (record["tenant"], record["deployment_id"], record["connection_type"]) == (
        "acme",
        "prod-1",
        "worker",
    )
    assert record["client_addr"] == f"127.0.0.1:{worker.socket.getsockname()[1]}"
    status, _, held = api("GET", f"/api/connections?instance_id={record['instance_id']}")
    assert {c["connection_id"] for c in held["connections"]} == {client_id, worker_id, other_id}

    assert api("GET", "/api/stats")[2] == {
        "total": 3,
        "tenants": {
            "acme": {
                "total": 2,
                "deployments": {"prod-1": {"total": 2, "types": {"client": 1, "worker": 1}}},
            },
            "beta": {"total": 1, "deployments": {"dev": {"total": 1, "types": {"client": 1}}}},
        },
    }

    data = {"text": "héllo", "n": [1, 2.5, None]}
    assert api("POST", f"/api/connections/{client_id}/messages", {"data": data})[2] == {
        "connection_id": client_id,
        "delivered": True,
    }
    assert json.loads(client.recv(timeout=5)) == {"type": "message", "data": data}

    body = {"tenant": "acme", "deployment_id": "prod-1", "data": "all of prod-1"}
    assert api("POST", "/api/broadcasts", body)[2] == {"targeted": 2}
    for ws in (client, worker):
        assert json.loads(ws.recv(timeout=5)) == {"type": "message", "data": "all of prod-1"}

    status, _, answer = api("DELETE", f"/api/connections/{worker_id}", {"code": 4321})
    assert (status, answer) == (200, {"connection_id": worker_id, "disconnected": True})
    with pytest.raises(ConnectionClosed) as closed:
        worker.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4321
    # Deregistered before the API answered: gone at once, not eventually.
    assert api("GET", f"/api/connections/{worker_id}")[:1] == (404,)
    assert api("GET", "/api/stats?tenant=acme")[2]["total"] == 1
    with pytest.raises(TimeoutError):
        other.recv(timeout=0.2)  # beta received none of it

    client.close()
    assert wait_until(lambda: api("GET", f"/api/connections/{client_id}")[0] == 404)
    status, _, gone = api("POST", f"/api/connections/{client_id}/messages", {"data": 1})
    assert (status, gone["code"]) == (404, "connection_not_found")
    other.close()


def test_authentication_and_validation_over_http(api_server):
    port = api_server.port
    status, headers, answer = Api(port, token=None)("GET", "/api/stats")
    assert (status, answer["code"]) == (401, "not_authenticated")
    assert headers["WWW-Authenticate"] == 'Bearer realm="realtime-api"'
    assert Api(port, token="not-the-token")("GET", "/api/stats")[0] == 401
    assert Api(port, token=OTHER_TOKEN)("GET", "/api/stats")[0] == 200

    api = Api(port)
    ws, connection_id = api_server.open_client()
    path = f"/api/connections/{connection_id}/messages"
    assert api("POST", path, b'{"data": NaN}')[2]["code"] == "invalid_json"
    assert api("POST", path, b'{"data": 1}', content_type="text/plain")[0] == 415
    assert api("POST", path, {"data": 1, "to": "someone"})[2] == {
        "code": "unknown_field",
        "detail": "unknown field(s): to; accepted: data",
    }
    assert api("POST", path, {"data": "x" * 70000})[0] == 413  # WS_MAX_MESSAGE_BYTES: 65536
    assert api("GET", "/api/connections?tenant=acme&connection_type=client")[2]["code"] == (
        "missing_parameter"
    )
    assert api("DELETE", f"/api/connections/{connection_id}", {"code": 1000})[0] == 400
    with pytest.raises(TimeoutError):
        ws.recv(timeout=0.2)  # nothing above reached the client
    assert api("GET", "/api/nowhere")[2]["code"] == "not_found"
    assert api("PATCH", f"/api/connections/{connection_id}")[1]["Allow"] == "GET, DELETE"

    status, _, document = Api(port, token=None)("GET", "/api/openapi.json")
    assert (status, document) == (200, DOCUMENT)
    ws.close()
