"""Registry exactness end to end: one item per open connection, none per closed one."""

import json
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import item_ids, wait_until

CLIENT_THAT_WAITS = """
import sys, time
from websockets.sync.client import connect
ws = connect(sys.argv[1], legacy=True)
print(ws.recv(timeout=10), flush=True)
time.sleep(600)
"""


def query(tenant="acme", deployment_id="prod-1", connection_type="client") -> dict:
    return {"tenant": tenant, "deployment_id": deployment_id, "connection_type": connection_type}


def test_item_carries_every_field(server):
    ws, connection_id = server.open_client()
    with ws:
        item = server.registry.client.get_item(
            TableName=server.registry.table_name, Key={"connection_id": {"S": connection_id}}
        )["Item"]
        local_port = ws.socket.getsockname()[1]
    assert item["tenant"] == {"S": "acme"}
    assert item["deployment_id"] == {"S": "prod-1"}
    assert item["connection_type"] == {"S": "client"}
    assert item["connected_at"]["S"].endswith("Z")
    assert item["client_addr"] == {"S": f"127.0.0.1:{local_port}"}
    assert item["channel_name"]["S"]
    assert item["instance_id"]["S"]
    assert item["scope_key"] == {"S": f"prod-1#client#{connection_id}"}
    ttl = int(item["ttl"]["N"])  # a Number, as DynamoDB's TTL requires
    assert time.time() + 3500 < ttl <= time.time() + 3600


def test_tenant_and_instance_queries(start_server):
    first, second = start_server(), start_server()
    opened = {
        "a-p1-client": first.open_client(query("a", "p1", "client")),
        "a-p1-worker": first.open_client(query("a", "p1", "worker")),
        "a-p2-client": second.open_client(query("a", "p2", "client")),
        "b-p1-client": second.open_client(query("b", "p1", "client")),
    }
    ids = {name: connection_id for name, (_, connection_id) in opened.items()}
    registry = first.registry

    def tenant_ids(*args, **kwargs):
        return {c.connection_id for c in registry.for_tenant(*args, **kwargs).connections}

    assert tenant_ids("a") == {ids["a-p1-client"], ids["a-p1-worker"], ids["a-p2-client"]}
    assert tenant_ids("a", deployment_id="p1") == {ids["a-p1-client"], ids["a-p1-worker"]}
    assert tenant_ids("a", deployment_id="p1", connection_type="worker") == {ids["a-p1-worker"]}
    assert tenant_ids("b") == {ids["b-p1-client"]}

    first_instance = registry.get(ids["a-p1-client"]).instance_id
    second_instance = registry.get(ids["b-p1-client"]).instance_id
    assert first_instance != second_instance
    assert {c.connection_id for c in registry.for_instance(first_instance)} == {
        ids["a-p1-client"],
        ids["a-p1-worker"],
    }
    for ws, _ in opened.values():
        ws.close()


def test_clean_close_deregisters(server):
    clients = [server.open_client() for _ in range(5)]
    assert item_ids(server.registry) == {cid for _, cid in clients}
    for ws, _ in clients[:3]:
        ws.close()
    assert wait_until(lambda: item_ids(server.registry) == {cid for _, cid in clients[3:]})
    for ws, _ in clients[3:]:
        ws.close()
    assert wait_until(lambda: item_ids(server.registry) == set())


def test_reset_tcp_connection_deregisters(server):
    """The client vanishes with a TCP reset, no close frame."""
    ws, _connection_id = server.open_client()
    keeper, keeper_id = server.open_client()
    sock = ws.socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    assert wait_until(lambda: item_ids(server.registry) == {keeper_id})
    keeper.close()


def test_killed_client_process_deregisters(server, tmp_path):
    """SIGKILL: the kernel closes the socket, no WebSocket close frame is ever sent."""
    script = tmp_path / "client.py"
    script.write_text(CLIENT_THAT_WAITS)
    client = subprocess.Popen(
        [sys.executable, str(script), server.url()], stdout=subprocess.PIPE, text=True
    )
    try:
        connection_id = json.loads(client.stdout.readline())["connection_id"]
        assert item_ids(server.registry) == {connection_id}
    finally:
        client.kill()
        client.wait()
    assert wait_until(lambda: item_ids(server.registry) == set())


def test_sigterm_deregisters_and_closes_with_1001(server):
    clients = [server.open_client() for _ in range(20)]
    assert len(item_ids(server.registry)) == 20
    server.process.signal(signal.SIGTERM)
    assert server.process.process.wait(30) == 0
    # Deregistered before the process exited, not later by TTL.
    assert item_ids(server.registry) == set()
    for ws, _ in clients:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


def test_unpinged_connection_stays_registered_past_its_ttl(start_server):
    server = start_server(CONNECTION_TTL_SECONDS="4", TTL_REFRESH_SECONDS="1")
    ws, connection_id = server.open_client()
    with ws:
        first_ttl = server.registry.get(connection_id).expires_at
        time.sleep(6)  # longer than the TTL, no ping
        record = server.registry.get(connection_id)  # None if expired
        assert record is not None and record.expires_at > first_ttl
        assert record.expires_at >= time.time()


def test_pings_do_not_write_until_a_refresh_is_due(start_server):
    server = start_server(
        CONNECTION_TTL_SECONDS="40", TTL_REFRESH_SECONDS="10", WS_RATE_PER_SECOND="0"
    )
    ws, connection_id = server.open_client()
    with ws:
        ttl = server.registry.get(connection_id).expires_at
        for _ in range(50):
            ws.send('{"type": "ping"}')
            assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        assert server.registry.get(connection_id).expires_at == ttl


def test_closed_connection_is_never_resurrected_by_a_late_refresh(start_server):
    """The TTL refresh is conditional: closing while refreshes are due leaves no item behind."""
    server = start_server(CONNECTION_TTL_SECONDS="4", TTL_REFRESH_SECONDS="1")
    for _ in range(10):
        ws, _ = server.open_client()
        ws.send('{"type": "ping"}')
        ws.close()
    time.sleep(3)  # refreshes fall due and sweeps run
    assert item_ids(server.registry) == set()
