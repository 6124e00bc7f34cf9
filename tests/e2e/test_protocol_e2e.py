"""The protocol end to end: a real daphne process, moto over HTTP, real WebSocket clients."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import closed_with, item_ids, receive, wait_until

SEED_EXAMPLE = """
import asyncio
import websockets

async def connect():
    uri = "ws://localhost:8765/?tenant=acme&deployment_id=prod-1&connection_type=client"
    async with websockets.connect(uri) as ws:
        # Receive connection confirmation
        response = await ws.recv()
        print(f"Connected: {response}")

        # Send a ping
        await ws.send('{"type": "ping"}')
        pong = await ws.recv()
        print(f"Pong: {pong}")

        # Get connection info
        await ws.send('{"type": "info"}')
        info = await ws.recv()
        print(f"Info: {info}")

asyncio.run(connect())
"""


def test_connected_ping_info_echo(server):
    ws, connection_id = server.open_client()
    with ws:
        ws.send(json.dumps({"type": "ping"}))
        pong = receive(ws)
        assert pong["type"] == "pong" and pong["timestamp"].endswith("Z")

        ws.send(json.dumps({"type": "info"}))
        info = receive(ws)
        assert info["type"] == "info"
        assert info["connection_id"] == connection_id
        assert (info["tenant"], info["deployment_id"], info["connection_type"]) == (
            "acme",
            "prod-1",
            "client",
        )
        assert info["connected_at"].endswith("Z") and info["expires_at"].endswith("Z")

        ws.send(json.dumps({"type": "chat", "text": "hi"}))
        assert receive(ws) == {"type": "echo", "data": {"type": "chat", "text": "hi"}}
        assert item_ids(server.registry) == {connection_id}


def test_connection_ids_are_fresh(server):
    ids = set()
    for _ in range(5):
        ws, connection_id = server.open_client()
        ws.close()
        ids.add(connection_id)
    assert len(ids) == 5


def test_seed_readme_python_example(server, tmp_path: Path):
    """The original README's client, verbatim but for the port the test server got."""
    script = tmp_path / "example.py"
    script.write_text(SEED_EXAMPLE.replace("localhost:8765", f"localhost:{server.port}"))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["Connected", "Pong", "Info"]
    connected = json.loads(lines[0].split(": ", 1)[1])
    info = json.loads(lines[2].split(": ", 1)[1])
    assert connected["type"] == "connected"
    assert json.loads(lines[1].split(": ", 1)[1])["type"] == "pong"
    assert info["connection_id"] == connected["connection_id"]


def test_websocat_client(server):
    websocat = shutil.which("websocat") or str(Path(sys.executable).parent / "websocat")
    # --no-close keeps the socket open after stdin ends, so that every reply arrives.
    process = subprocess.Popen(
        [websocat, "--no-close", server.url()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        process.stdin.write('{"type":"ping"}\n{"type":"info"}\n{"hello":"world"}\n')
        process.stdin.close()
        replies = [json.loads(process.stdout.readline()) for _ in range(4)]
    finally:
        process.terminate()
        process.wait(10)
    assert [reply["type"] for reply in replies] == ["connected", "pong", "info", "echo"]
    assert replies[3]["data"] == {"hello": "world"}


@pytest.mark.parametrize(
    "query, code",
    [
        ("deployment_id=prod-1&connection_type=client", "missing_parameter"),
        ("tenant=&deployment_id=prod-1&connection_type=client", "invalid_parameter"),
        ("tenant=a&tenant=a&deployment_id=prod-1&connection_type=client", "repeated_parameter"),
        (f"tenant={'a' * 129}&deployment_id=prod-1&connection_type=client", "invalid_parameter"),
        ("tenant=ac%20me&deployment_id=prod-1&connection_type=client", "invalid_parameter"),
        ("tenant=ac%23me&deployment_id=prod-1&connection_type=client", "invalid_parameter"),
    ],
)
def test_rejected_handshake_gets_4400_and_registers_nothing(server, query, code):
    with server.connect(query) as ws:
        error = receive(ws)
        assert error["type"] == "error" and error["code"] == code and error["detail"]
        assert closed_with(ws) == 4400
    assert item_ids(server.registry) == set()


def test_connection_type_restriction_gets_4403(start_server):
    server = start_server(WS_CONNECTION_TYPES="worker,admin")
    with server.connect() as ws:  # connection_type=client
        assert receive(ws)["code"] == "connection_type_not_allowed"
        assert closed_with(ws) == 4403
    ws, _ = server.open_client(
        {"tenant": "acme", "deployment_id": "prod-1", "connection_type": "worker"}
    )
    ws.close()


def test_bad_frames_get_errors_and_the_connection_stays(server):
    ws, connection_id = server.open_client()
    with ws:
        ws.send("not json")
        assert receive(ws)["code"] == "invalid_json"
        ws.send("[1, 2]")
        assert receive(ws)["code"] == "not_an_object"
        ws.send(b"\x00\x01")
        assert receive(ws)["code"] == "binary_not_supported"
        ws.send('{"type": "ping"}')
        assert receive(ws)["type"] == "pong"
        assert item_ids(server.registry) == {connection_id}
    assert wait_until(lambda: item_ids(server.registry) == set())


def test_oversized_message_closes_with_1009_and_others_keep_working(start_server):
    server = start_server(WS_MAX_MESSAGE_BYTES="1024")
    bystander, bystander_id = server.open_client()
    ws, _connection_id = server.open_client()
    ws.send(json.dumps({"type": "chat", "text": "é" * 600}))  # 600 characters, 1,200+ bytes
    error = receive(ws)
    assert error["code"] == "message_too_big"
    assert closed_with(ws) == 1009
    with bystander:
        bystander.send('{"type": "ping"}')
        assert receive(bystander)["type"] == "pong"
        assert wait_until(lambda: item_ids(server.registry) == {bystander_id})


def test_other_paths_are_refused_before_the_handshake(server):
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused:
        connect(server.url().replace("/?", "/elsewhere?"), open_timeout=10)
    assert refused.value.response.status_code == 403
    assert item_ids(server.registry) == set()
