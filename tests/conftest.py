"""Shared fixtures: moto's in-process DynamoDB mock and a registry on a created table."""

import pytest
from moto import mock_aws

from realtime.registry.dynamodb import DynamoDBRegistry, make_client
from realtime.server import runtime as runtime_module
from realtime.server.runtime import Runtime

NOW = 1_800_000_000  # the fake clock's start, epoch seconds

# The registry table's indexes as DESIGN.md section 3 asks for them.
EXPECTED_INDEXES = {
    "by_tenant": [
        {"AttributeName": "tenant", "KeyType": "HASH"},
        {"AttributeName": "scope_key", "KeyType": "RANGE"},
    ],
    "by_instance": [
        {"AttributeName": "instance_id", "KeyType": "HASH"},
        {"AttributeName": "connection_id", "KeyType": "RANGE"},
    ],
}


class FakeClock:
    """A clock that moves only when a test moves it."""

    def __init__(self, now: float = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def fresh_runtime():
    """Every test starts with no process runtime (registry, keeper, inbox, ...) and leaves none."""
    runtime_module.reset()
    yield
    runtime_module.reset()


def use_registry(registry: DynamoDBRegistry) -> Runtime:
    """Make `registry` the process's: what consumers, views and the API then use."""
    chosen = Runtime(registry=registry)
    runtime_module.install(chosen)
    return chosen


@pytest.fixture
def aws():
    """moto's mock of AWS for the test."""
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def mocked_client():
    """One client for every test: building one costs ~0.2 s. moto intercepts it while a test's
    `mock_aws` is active and starts each test with empty tables; use it only under `aws`."""
    return make_client(region="us-east-1", access_key_id="testing", secret_access_key="testing")


@pytest.fixture
def dynamodb(aws, mocked_client, clock) -> DynamoDBRegistry:
    """A registry on a freshly created table, reading time from `clock`."""
    registry = DynamoDBRegistry(client=mocked_client, table_name="tests_connections", clock=clock)
    registry.create_table()
    return registry
