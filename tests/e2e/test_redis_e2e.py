"""The Redis channel layer with real daphne processes and a real Redis."""

import json
import os
import time

import pytest
import redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"these tests need Redis at {REDIS_URL} (set TEST_REDIS_URL): {exc}")
    return REDIS_URL


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
