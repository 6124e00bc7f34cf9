"""The DynamoDB endpoint the servers use: moto's server or bench.fake_dynamodb, on loopback,
with the benchmark's table created, its counters read and its items counted."""

import json
import re
import sys
import urllib.request

from bench.processes import ServerProcess, base_env, moto_server

TABLE = "bench_connections"
HTTP_READY = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


class Endpoint:
    """A DynamoDB endpoint on loopback: moto's server or bench.fake_dynamodb."""

    def __init__(self, kind: str, latency_ms: float):
        self.kind = kind
        self.latency_ms = latency_ms
        if kind == "moto":
            self.process = moto_server()
        else:
            self.process = ServerProcess(
                [
                    sys.executable,
                    "-m",
                    "bench.fake_dynamodb",
                    "--port",
                    "0",
                    "--latency-ms",
                    str(latency_ms),
                ],
                env=base_env(),
                ready=HTTP_READY,
                name="fake_dynamodb",
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.process.port}"

    @property
    def label(self) -> str:
        if self.kind == "moto":
            return "moto server (bench.serial_moto: one request at a time)"
        return f"fake DynamoDB endpoint, {self.latency_ms:g} ms per call"

    def start(self) -> "Endpoint":
        self.process.start(timeout=60)
        if not self.process.running or not self.process.port:
            raise RuntimeError(f"{self.process.name} did not start:\n{self.process.output}")
        self.create_table()
        return self

    def stop(self) -> None:
        if self.process.process is not None:
            self.process.kill()

    def client(self):
        from realtime.registry.dynamodb import make_client

        return make_client(
            region="us-east-1",
            endpoint_url=self.url,
            access_key_id="testing",
            secret_access_key="testing",
            read_timeout=30,
            max_attempts=3,
        )

    def create_table(self) -> None:
        from realtime.registry.dynamodb import DynamoDBRegistry

        DynamoDBRegistry(client=self.client(), table_name=TABLE).create_table(wait=True)

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=10) as response:
            return json.load(response)

    def reset_stats(self) -> None:
        request = urllib.request.Request(f"{self.url}/reset-stats", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def write_count(stats: dict) -> tuple[int, dict]:
    """DynamoDB item writes for connections in a /stats answer: (total, calls per write
    operation).

    The total is the endpoint's `item_writes` (items written or deleted, BatchWriteItem and
    TransactWriteItems counted per item) less its `lease_writes` (the server instance's own
    lease, a cost per instance: see `lease_writes_per_hour`); without them, one per write call.
    """
    calls = stats.get("calls", {})
    per = {
        op: calls.get(op, 0)
        for op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
    }
    total = stats.get("item_writes")
    if not isinstance(total, int):
        return sum(per.values()), per
    return total - stats.get("lease_writes", 0), per


def lease_writes_per_hour(stats: dict) -> float | None:
    """The instance's lease writes in a /stats answer, per instance-hour of the window."""
    seconds = stats.get("seconds")
    if "lease_writes" not in stats or not seconds:
        return None
    return stats["lease_writes"] * 3600 / seconds


def item_count(endpoint: Endpoint) -> int:
    """Items in the benchmark's table (a counting Scan)."""
    client, count = endpoint.client(), 0
    kwargs = {"TableName": TABLE, "Select": "COUNT"}
    while True:
        page = client.scan(**kwargs)
        count += page["Count"]
        if "LastEvaluatedKey" not in page:
            return count
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
