"""Registry fixtures: the benchmark's fake DynamoDB endpoint as a real process, spied clients.

moto's in-process mock (`aws`, `mocked_client`, `dynamodb`) comes from tests/conftest.py.
"""

import itertools
import re
import sys

import pytest

from realtime.registry.dynamodb import DynamoDBRegistry, make_client
from tests.processes import ServerProcess, base_env
from tests.registry.store import Spy

TABLE = "tests_connections"  # the `dynamodb` fixture's table

_FAKE_READY = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
_fake_tables = itertools.count()
# Each call to the fake endpoint takes this long: a little of a real network's latency.
FAKE_LATENCY_MS = 2


def fake_dynamodb_process(latency_ms: float) -> ServerProcess:
    """`python -m bench.fake_dynamodb` on a port the OS picks; start() waits for its line."""
    return ServerProcess(
        [sys.executable, "-m", "bench.fake_dynamodb", "--latency-ms", str(latency_ms)],
        env=base_env(),
        ready=_FAKE_READY,
        name="fake_dynamodb",
    )


def fake_dynamodb_client(endpoint: ServerProcess):
    return make_client(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{endpoint.port}",
        access_key_id="testing",
        secret_access_key="testing",
        max_connections=50,
    )


@pytest.fixture(scope="module")
def fake_endpoint():
    """The fake DynamoDB endpoint, one process for the test module; it must exit cleanly."""
    server = fake_dynamodb_process(FAKE_LATENCY_MS).start()
    yield server
    assert server.stop() == 0, server.output


@pytest.fixture(scope="module")
def fake_client(fake_endpoint):
    return fake_dynamodb_client(fake_endpoint)


@pytest.fixture
def fake_table_name() -> str:
    """A table name of its own for each test: the endpoint outlives the test."""
    return f"fake_{next(_fake_tables)}"


@pytest.fixture
def fake_dynamodb(fake_client, fake_table_name, clock) -> DynamoDBRegistry:
    """A registry on a freshly created table of the fake endpoint, reading time from `clock`."""
    registry = DynamoDBRegistry(client=fake_client, table_name=fake_table_name, clock=clock)
    registry.create_table()
    return registry


@pytest.fixture
def spy(dynamodb) -> Spy:
    """The `dynamodb` registry's client, wrapped to record and stub its calls."""
    dynamodb.client = Spy(dynamodb.client)
    return dynamodb.client


@pytest.fixture
def fresh(aws, mocked_client, clock) -> DynamoDBRegistry:
    """A registry whose table does not exist yet, on a spied client."""
    return DynamoDBRegistry(client=Spy(mocked_client), table_name=TABLE, clock=clock)
