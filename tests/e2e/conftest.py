"""Fixtures for end-to-end tests: a moto DynamoDB server over HTTP, daphne processes, a client."""

import itertools
import json
import os
import signal
import time
from urllib.parse import urlencode

import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from realtime.core.leases import LEASE_KEY_PREFIX
from realtime.registry.dynamodb import DynamoDBRegistry, make_client
from tests.processes import daphne_server, moto_server, server_env, uvicorn_server

pytestmark = pytest.mark.e2e

_table_numbers = itertools.count()


@pytest.fixture(scope="session")
def moto():
    """moto's DynamoDB server, shared by the session; each test uses a table of its own."""
    server = moto_server().start()
    yield server
    server.stop()


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis that cross-process tests share (the default channel layer of a fleet)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"these tests need Redis at {REDIS_URL} (set TEST_REDIS_URL): {exc}")
    return REDIS_URL


@pytest.fixture
def own_moto():
    """A DynamoDB endpoint of the test's own, to freeze (SIGSTOP), thaw or kill; a frozen one is
    thawed before it is killed."""
    server = moto_server().start()
    yield server
    if server.running:
        server.signal(signal.SIGCONT)
    server.kill()


@pytest.fixture(scope="session")
def moto_url(moto) -> str:
    return f"http://127.0.0.1:{moto.port}"


@pytest.fixture
def table_name() -> str:
    return f"e2e_{os.getpid()}_{next(_table_numbers)}"


def registry_at(endpoint_url: str, table_name: str) -> DynamoDBRegistry:
    """A test's own view of a table, through the same HTTP endpoint the server uses."""
    client = make_client(
        region="us-east-1",
        endpoint_url=endpoint_url,
        access_key_id="testing",
        secret_access_key="testing",
    )
    return DynamoDBRegistry(client=client, table_name=table_name)


@pytest.fixture
def registry(moto_url, table_name) -> DynamoDBRegistry:
    return registry_at(moto_url, table_name)


class Server:
    """A running daphne process serving the project, and how to reach it."""

    def __init__(self, process, registry: DynamoDBRegistry):
        self.process = process
        self.registry = registry

    @property
    def port(self) -> int:
        return self.process.port

    def url(self, query: dict | str | None = None) -> str:
        if query is None:
            query = {"tenant": "acme", "deployment_id": "prod-1", "connection_type": "client"}
        if isinstance(query, dict):
            query = urlencode(query)
        return f"ws://127.0.0.1:{self.port}/?{query}"

    def connect(self, query: dict | str | None = None, **kwargs):
        return connect(self.url(query), open_timeout=10, legacy=True, **kwargs)

    def open_client(self, query: dict | str | None = None):
        """Connect and read `connected`; returns (websocket, connection_id)."""
        ws = self.connect(query)
        message = json.loads(ws.recv(timeout=10))
        assert message["type"] == "connected", message
        return ws, message["connection_id"]

    def stop(self) -> int:
        return self.process.stop()


def item_ids(registry: DynamoDBRegistry) -> set[str]:
    """Every connection item's id in the table, expired or not, leases left out (a Scan:
    tests only)."""
    ids: set[str] = set()
    kwargs = {"TableName": registry.table_name, "ProjectionExpression": "connection_id"}
    while True:
        response = registry.client.scan(**kwargs)
        ids.update(item["connection_id"]["S"] for item in response["Items"])
        if "LastEvaluatedKey" not in response:
            return {cid for cid in ids if not cid.startswith(LEASE_KEY_PREFIX)}
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def wait_until(predicate, timeout: float = 10, interval: float = 0.05):
    """Poll until `predicate()` is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def _servers(make_process, moto_url: str, table_name: str, registry: DynamoDBRegistry):
    """Yields a function that starts server processes against the test's table; stops them
    all afterwards."""
    started: list[Server] = []

    def start(*args: str, **env: str) -> Server:
        process = make_process(server_env(moto_url, table_name, **env), *args).start()
        server = Server(process, registry)
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.stop()


@pytest.fixture
def start_server(moto_url, table_name, registry):
    """Start daphne processes (arguments and environment as given) against the test's table."""
    yield from _servers(daphne_server, moto_url, table_name, registry)


@pytest.fixture
def start_uvicorn(moto_url, table_name, registry):
    """Start uvicorn processes against the test's table."""
    yield from _servers(uvicorn_server, moto_url, table_name, registry)


def receive(ws) -> dict:
    return json.loads(ws.recv(timeout=5))


def closed_with(ws) -> int:
    """Read until the server closes; returns the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=5)
    return closed.value.rcvd.code


@pytest.fixture
def server(start_server) -> Server:
    return start_server()
