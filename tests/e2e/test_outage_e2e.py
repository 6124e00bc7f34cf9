"""DynamoDB outages: new connections are refused fast with 1013, open ones keep working."""

import json
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import Server, item_ids, registry_at, wait_until
from tests.processes import daphne_server, server_env

# Generous bound: the point is "fails fast instead of hanging", not a speed target.
REFUSAL_BOUND_SECONDS = 8


@pytest.fixture
def outage_server(own_moto, table_name):
    url = f"http://127.0.0.1:{own_moto.port}"
    process = daphne_server(server_env(url, table_name)).start()
    server = Server(process, registry_at(url, table_name))
    yield server
    process.stop()


def refused_with(server: Server) -> tuple[dict, int, float]:
    """Connect during an outage: (error message, close code, seconds until closed)."""
    started = time.monotonic()
    with server.connect() as ws:
        error = json.loads(ws.recv(timeout=30))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    return error, closed.value.rcvd.code, time.monotonic() - started


def assert_still_serving(ws, connection_id: str) -> None:
    ws.send('{"type": "ping"}')
    assert json.loads(ws.recv(timeout=2))["type"] == "pong"
    ws.send('{"type": "info"}')
    assert json.loads(ws.recv(timeout=2))["connection_id"] == connection_id
    ws.send('{"type": "chat"}')
    assert json.loads(ws.recv(timeout=2))["type"] == "echo"


def test_hung_dynamodb_refuses_new_connections_and_keeps_open_ones(outage_server, own_moto):
    ws, connection_id = outage_server.open_client()
    own_moto.signal(signal.SIGSTOP)  # accepts TCP, never answers: the worst kind of outage
    try:
        error, code, seconds = refused_with(outage_server)
        assert (error["code"], code) == ("registry_unavailable", 1013)
        assert seconds < REFUSAL_BOUND_SECONDS
        assert_still_serving(ws, connection_id)
    finally:
        own_moto.signal(signal.SIGCONT)

    # Recovery needs no restart.
    fresh, fresh_id = outage_server.open_client()
    assert_still_serving(ws, connection_id)
    assert {connection_id, fresh_id} <= item_ids(outage_server.registry)
    ws.close()
    fresh.close()
    assert wait_until(lambda: connection_id not in item_ids(outage_server.registry))


def test_unreachable_dynamodb_refuses_new_connections_and_keeps_open_ones(outage_server, own_moto):
    ws, connection_id = outage_server.open_client()
    own_moto.kill()  # connection refused
    error, code, seconds = refused_with(outage_server)
    assert (error["code"], code) == ("registry_unavailable", 1013)
    assert seconds < REFUSAL_BOUND_SECONDS
    assert_still_serving(ws, connection_id)
    ws.close()
    # The failed deregistration is logged, the server carries on.
    assert outage_server.process.wait_for_output("registry.deregister_failed")
    assert outage_server.process.running
