"""The Redis channel layer with real daphne processes and a real Redis."""

import json
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.api_contract import TOKEN, Api
from tests.e2e.conftest import wait_until


def test_idle_clients_stay_connected_across_blocking_reads(start_server, redis_url):
    """channels_redis reads with a 5 s BZPOPMIN; a socket timeout as short would kill idle
    consumers with 1011 every few cycles. Thirty idle seconds are six such cycles."""
    server = start_server(REDIS_URL=redis_url)
    clients = [server.open_client() for _ in range(10)]
    time.sleep(30)
    for ws, connection_id in clients:
        ws.send('{"type": "info"}')
        assert json.loads(ws.recv(timeout=5))["connection_id"] == connection_id
        ws.close()
    assert "Timeout reading from" not in server.process.output


def test_api_call_on_one_instance_reaches_a_client_of_another(start_server, redis_url):
    """Two daphne processes share moto and Redis: sends, broadcasts and disconnects made
    through one instance's API reach clients held by the other."""
    fleet = {
        "INSTANCE_HEARTBEAT_SECONDS": "0.5",
        "INSTANCE_LEASE_SECONDS": "4",
        "DELIVERY_TIMEOUT_SECONDS": "1",
    }
    holder = start_server(REDIS_URL=redis_url, API_TOKENS=TOKEN, **fleet)
    other = start_server(REDIS_URL=redis_url, API_TOKENS=TOKEN, **fleet)
    api = Api(other.port)
    ws, connection_id = holder.open_client()
    second, second_id = holder.open_client()

    status, _, body = api("POST", f"/api/connections/{connection_id}/messages", {"data": {"n": 1}})
    assert (status, body) == (200, {"connection_id": connection_id, "delivered": True})
    assert json.loads(ws.recv(timeout=5)) == {"type": "message", "data": {"n": 1}}

    status, _, body = api("POST", "/api/broadcasts", {"tenant": "acme", "data": "all"})
    assert (status, body) == (200, {"targeted": 2})
    for client in (ws, second):
        assert json.loads(client.recv(timeout=5)) == {"type": "message", "data": "all"}

    status, _, body = api("DELETE", f"/api/connections/{connection_id}", {"code": 4321})
    assert (status, body) == (200, {"connection_id": connection_id, "disconnected": True})
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd.code == 4321
    assert holder.registry.get(connection_id) is None  # removed before the API answered

    # The holder dies without cleaning up. Silence alone is not death: while its lease is
    # live a send answers 504 and the item stays...
    holder.process.kill()
    status, _, body = api("POST", f"/api/connections/{second_id}/messages", {"data": 1})
    assert (status, body["code"]) == (504, "holder_not_responding")
    assert holder.registry.get(second_id) is not None
    # ...until the other instance finds its lease lapsed: then the connection is gone.
    assert wait_until(lambda: holder.registry.get(second_id) is None, timeout=15)
    status, _, body = api("POST", f"/api/connections/{second_id}/messages", {"data": 1})
    assert (status, body["code"]) == (404, "connection_not_found")
