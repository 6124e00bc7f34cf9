"""The seed's protocol, end to end: a real daphne process, moto over HTTP, a real client."""

import json

from tests.e2e.conftest import item_ids


def test_connected_ping_info_echo(server):
    ws, connection_id = server.open_client()
    with ws:
        ws.send(json.dumps({"type": "ping"}))
        pong = json.loads(ws.recv(timeout=5))
        assert pong["type"] == "pong" and pong["timestamp"].endswith("Z")

        ws.send(json.dumps({"type": "info"}))
        info = json.loads(ws.recv(timeout=5))
        assert info["type"] == "info"
        assert info["connection_id"] == connection_id
        assert (info["tenant"], info["deployment_id"], info["connection_type"]) == (
            "acme",
            "prod-1",
            "client",
        )

        ws.send(json.dumps({"type": "chat", "text": "hi"}))
        assert json.loads(ws.recv(timeout=5)) == {
            "type": "echo",
            "data": {"type": "chat", "text": "hi"},
        }
        assert item_ids(server.registry) == {connection_id}
