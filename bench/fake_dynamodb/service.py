"""The service: its tables, the counters GET /stats reports, and one call dispatched to its
operation (table_operations.py, item_operations.py, query_operations.py)."""

import json
import sys
import time
import traceback
from collections import Counter

from bench.fake_dynamodb import item_operations, query_operations, table_operations
from bench.fake_dynamodb.errors import DynamoError, invalid
from bench.fake_dynamodb.tables import Table

# The registry's lease items (realtime.core.leases): counted apart in /stats.
LEASE_KEY_PREFIX = "instance#"

OPERATIONS = {
    **table_operations.OPERATIONS,
    **item_operations.OPERATIONS,
    **query_operations.OPERATIONS,
}
_encode = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps builds one per call


class FakeDynamoDB:
    """The tables and the operations on them; `handle` answers one call."""

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.tables: dict[str, Table] = {}
        self.reset_stats()

    # counters

    def reset_stats(self) -> None:
        self.calls: Counter = Counter()
        self.errors: Counter = Counter()
        self.item_writes = 0
        self.lease_writes = 0  # of them, to server instances' leases: per instance, not connection
        self.reset_at = time.monotonic()
        self.cpu_at = time.process_time()

    def stats(self) -> dict:
        return {
            "calls": dict(self.calls),
            "items": sum(len(table.items) for table in self.tables.values()),
            "item_writes": self.item_writes,
            "lease_writes": self.lease_writes,
            "errors": dict(self.errors),
            "seconds": round(time.monotonic() - self.reset_at, 3),
            "cpu_seconds": round(time.process_time() - self.cpu_at, 3),
            "latency_ms": self.latency * 1000,
            "tables": {name: len(table.items) for name, table in self.tables.items()},
        }

    def count_write(self, key: tuple) -> None:
        """One item written or deleted by a single-item call; `key` as Table.key gives it."""
        self.item_writes += 1
        if isinstance(key[0], str) and key[0].startswith(LEASE_KEY_PREFIX):
            self.lease_writes += 1

    # dispatch

    def handle(self, operation: str, body: bytes) -> tuple[int, bytes]:
        """Answer one DynamoDB call: (HTTP status, JSON body)."""
        self.calls[operation] += 1
        try:
            handler = OPERATIONS.get(operation)
            if handler is None:
                raise DynamoError(
                    "UnknownOperationException",
                    f"Unknown operation {operation!r} (bench.fake_dynamodb)",
                )
            try:
                request = json.loads(body) if body else {}
            except ValueError:
                raise DynamoError("SerializationException", "Malformed JSON body") from None
            if not isinstance(request, dict):
                raise DynamoError("SerializationException", "The body must be a JSON object")
            status, answer = 200, handler(self, request)
        except DynamoError as exc:
            self.errors[exc.code] += 1
            status, answer = exc.status, exc.body()
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.errors["InternalServerError"] += 1
            status = 500
            answer = {
                "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "message": f"bench.fake_dynamodb failed: {exc!r}",
            }
        return status, _encode(answer).encode()

    def table(self, name) -> Table:
        """The table named `name`, which every operation on a table looks up first."""
        table = self.tables.get(name)
        if table is None:
            if not isinstance(name, str) or not name:
                raise invalid("TableName is required")
            raise DynamoError(
                "ResourceNotFoundException",
                f"Requested resource not found: Table: {name} not found",
            )
        return table
