"""The same project served by uvicorn: protocol, close codes and registry exactness, end to end."""

import json
import signal
import socket
import struct

import pytest

from tests.e2e.conftest import Server, closed_with, item_ids, receive, wait_until


@pytest.fixture
def server(start_uvicorn) -> Server:
    return start_uvicorn()


def test_connected_ping_info_echo_and_a_clean_close(server):
    ws, connection_id = server.open_client()
    with ws:
        ws.send('{"type": "ping"}')
        assert receive(ws)["type"] == "pong"
        ws.send('{"type": "info"}')
        assert receive(ws)["connection_id"] == connection_id
        ws.send('{"type": "hello", "n": 1}')
        assert receive(ws) == {"type": "echo", "data": {"type": "hello", "n": 1}}
        assert item_ids(server.registry) == {connection_id}
    assert wait_until(lambda: item_ids(server.registry) == set())


def test_a_bad_handshake_gets_its_close_code_and_writes_nothing(server):
    with server.connect({"tenant": "acme"}) as ws:
        assert receive(ws)["code"] == "missing_parameter"
        assert closed_with(ws) == 4400
    assert item_ids(server.registry) == set()


def test_server_close_codes_reach_the_client(start_uvicorn):
    server = start_uvicorn(WS_MAX_MESSAGE_BYTES="100")
    ws, _ = server.open_client()
    with ws:
        ws.send(json.dumps({"type": "x", "pad": "y" * 200}))
        assert receive(ws)["code"] == "message_too_big"
        assert closed_with(ws) == 1009
    assert wait_until(lambda: item_ids(server.registry) == set())


def test_a_pipelined_burst_is_echoed_in_full_and_in_order(start_uvicorn):
    # More messages in flight than realtime.uvicorn_protocol lets queue before it stops
    # reading: reading pauses and resumes, and nothing is lost or reordered.
    server = start_uvicorn(WS_RATE_PER_SECOND="0")
    ws, connection_id = server.open_client()
    with ws:
        for n in range(500):
            ws.send(json.dumps({"n": n}))
        assert [receive(ws)["data"]["n"] for _ in range(500)] == list(range(500))
        ws.send('{"type": "ping"}')
        assert receive(ws)["type"] == "pong"
        assert item_ids(server.registry) == {connection_id}
    assert wait_until(lambda: item_ids(server.registry) == set())


def test_a_dropped_tcp_connection_is_deregistered(server):
    ws, connection_id = server.open_client()
    assert item_ids(server.registry) == {connection_id}
    # RST, no close frame.
    ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.socket.close()
    assert wait_until(lambda: item_ids(server.registry) == set())


def test_sigterm_closes_every_client_and_deregisters_before_exit(server):
    clients = [server.open_client() for _ in range(20)]
    assert len(item_ids(server.registry)) == 20
    server.process.signal(signal.SIGTERM)
    # After its graceful shutdown uvicorn raises the signal again, so that it ends the process.
    assert server.process.process.wait(30) == -signal.SIGTERM
    assert server.process.wait_for_output("Application shutdown complete")
    assert item_ids(server.registry) == set()
    for ws, _ in clients:
        assert closed_with(ws) == 1001  # drained first, not uvicorn's 1012
    assert server.process.wait_for_output("server.drained closed=20 left_to_ttl=0")
