"""What registry tests look at and stub around the registry's own methods.

The DynamoDB backends keep their records in a table; these read it directly (raw items, item
counts, a tenant's quota counter), so that a test can check what was written, not only what
the registry says. `Spy` wraps a boto3 client to record calls and stub one operation.
"""

import threading

from botocore.exceptions import ClientError

from tests.processes import free_port

__all__ = [
    "Spy",
    "client_error",
    "counter",
    "free_port",
    "ids",
    "item_count",
    "raw_item",
    "ttl_description",
]


def raw_item(registry, connection_id: str) -> dict | None:
    """The item stored under `connection_id`, expired or not; None when there is none."""
    response = registry.client.get_item(
        TableName=registry.table_name, Key={"connection_id": {"S": connection_id}}
    )
    return response.get("Item")


def item_count(registry) -> int:
    """How many items the table holds, expired ones and quota counters included."""
    return registry.client.scan(TableName=registry.table_name, Select="COUNT")["Count"]


def counter(registry, tenant: str = "acme") -> int | None:
    """A tenant's quota counter as stored; None when it has none."""
    item = raw_item(registry, f"quota#{tenant}")
    return None if item is None else int(item["open_connections"]["N"])


def ids(connections) -> list[str]:
    return [c.connection_id for c in connections]


def client_error(code: str, operation: str) -> ClientError:
    """What botocore raises for a DynamoDB error answer with this code."""
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class Spy:
    """Wraps a boto3 client: records every call, and lets a test stub one operation.

    A stub is called as stub(real_method, **kwargs) and returns the response.
    """

    def __init__(self, client):
        self.client = client
        self.calls: list[tuple[str, dict, str]] = []  # (operation, kwargs, thread name)
        self.stubs: dict = {}

    def __getattr__(self, name):
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(**kwargs):
            self.calls.append((name, kwargs, threading.current_thread().name))
            stub = self.stubs.get(name)
            return stub(attr, **kwargs) if stub else attr(**kwargs)

        return call

    def operations(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def kwargs(self, operation: str) -> list[dict]:
        return [kwargs for name, kwargs, _ in self.calls if name == operation]


def ttl_description(registry) -> dict:
    """The table's TimeToLiveDescription, as DescribeTimeToLive answers it."""
    return registry.client.describe_time_to_live(TableName=registry.table_name)[
        "TimeToLiveDescription"
    ]
