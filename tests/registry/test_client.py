"""A dead DynamoDB fails fast, as RegistryUnavailable with a reason an operator can act on
(realtime/registry/dynamodb/client.py): nothing listens, or nothing answers."""

import socket
import time

import pytest
from botocore import exceptions as botocore_exceptions

import realtime.registry.dynamodb.batches as batches_module
from realtime.registry import RegistryUnavailable
from realtime.registry.dynamodb import DynamoDBRegistry, make_client
from tests.conftest import NOW
from tests.records import conn
from tests.registry.conftest import TABLE
from tests.registry.store import free_port


def dead_registry(port: int, **client_options):
    client = make_client(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="testing",
        secret_access_key="testing",
        connect_timeout=0.5,
        read_timeout=0.5,
        **client_options,
    )
    return DynamoDBRegistry(client=client, table_name=TABLE)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.register(conn("c-1")),
        lambda r: r.refresh("c-1", NOW),
        lambda r: r.deregister("c-1"),
        lambda r: r.get("c-1"),
        lambda r: r.for_tenant("acme"),
        lambda r: list(r.for_instance("host-a")),
        lambda r: r.create_table(),
    ],
    ids=["register", "refresh", "deregister", "get", "for_tenant", "for_instance", "create_table"],
)
def test_an_unreachable_endpoint_raises_registry_unavailable_fast(call):
    port = free_port()
    registry = dead_registry(port)  # default retries: 2 attempts
    started = time.monotonic()

    with pytest.raises(RegistryUnavailable) as caught:
        call(registry)

    assert time.monotonic() - started < 3
    assert caught.value.reason == "unreachable"
    assert isinstance(caught.value.__cause__, botocore_exceptions.ConnectionError)
    assert registry.location == f"http://127.0.0.1:{port}"


def test_deregister_many_on_an_unreachable_endpoint_returns_every_id(monkeypatch):
    monkeypatch.setattr(batches_module.time, "sleep", lambda seconds: None)
    registry = dead_registry(free_port(), max_attempts=1)

    assert registry.deregister_many(["c-1", "c-2"], attempts=2) == ["c-1", "c-2"]


def test_an_endpoint_that_never_answers_raises_registry_unavailable_fast():
    with socket.socket() as listener:  # accepts connections (backlog), never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        registry = dead_registry(listener.getsockname()[1], max_attempts=1)
        started = time.monotonic()

        with pytest.raises(RegistryUnavailable) as caught:
            registry.get("c-1")

    assert time.monotonic() - started < 3
    assert caught.value.reason == "timeout"
