"""How fast the endpoint answers: `python -m bench.fake_dynamodb --measure`.

Starts the endpoint as a child process and drives it from this process with a connection's
registry calls (raw keep-alive HTTP connections on asyncio, or boto3 clients on threads), then
prints the calls/s it sustained, the round trips and the CPU both sides spent.
"""

import asyncio
import json
import re
import subprocess
import sys
import threading
import time

from bench.fake_dynamodb.server import CONTENT_TYPE, TARGET_PREFIX
from bench.processes import ROOT

_MEASURE_TABLE = "fake_dynamodb_measure"
_STATIC_HEADERS = (
    # What boto3 sends besides the target and length, so that the server parses as much.
    "Host: 127.0.0.1\r\nAccept-Encoding: identity\r\n"
    f"Content-Type: {CONTENT_TYPE}\r\n"
    "User-Agent: Boto3/1.40 md/Botocore#1.40 ua/2.1 os/linux lang/python#3.12 "
    "cfg/retry-mode#standard\r\n"
    "X-Amz-Date: 20260101T000000Z\r\n"
    "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
    "Signature=0000000000000000000000000000000000000000000000000000000000000000\r\n"
    "amz-sdk-invocation-id: 00000000-0000-0000-0000-000000000000\r\n"
    "amz-sdk-request: attempt=1; max=2\r\n"
)


def _raw_request(operation: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST / HTTP/1.1\r\n{_STATIC_HEADERS}X-Amz-Target: {TARGET_PREFIX}{operation}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def _cycle(worker: int, n: int) -> list[tuple[str, dict]]:
    """One connection's life in the registry's calls: register, refresh, get, deregister."""
    cid = f"{worker:04d}-{n:08d}-0000-0000-000000000000"
    item = {
        "connection_id": {"S": cid},
        "tenant": {"S": f"tenant-{worker % 10}"},
        "deployment_id": {"S": "prod"},
        "connection_type": {"S": "client"},
        "connected_at": {"S": "2026-01-01T00:00:00.000Z"},
        "ttl": {"N": "1800003600"},
        "instance_id": {"S": f"host-{worker % 4}"},
        "channel_name": {"S": f"specific.{cid}"},
        "client_addr": {"S": "203.0.113.7:50123"},
        "scope_key": {"S": f"prod#client#{cid}"},
    }
    key = {"connection_id": {"S": cid}}
    table = _MEASURE_TABLE
    return [
        (
            "PutItem",
            {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(connection_id)",
            },
        ),
        (
            "UpdateItem",
            {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET #ttl = :ttl",
                "ConditionExpression": "attribute_exists(connection_id)",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {":ttl": {"N": "1800007200"}},
            },
        ),
        ("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}),
        ("DeleteItem", {"TableName": table, "Key": key, "ReturnValues": "ALL_OLD"}),
    ]


def _create_measure_table() -> dict:
    # Imported when measuring only: the endpoint's own process never loads boto3 and Django.
    from realtime.registry.dynamodb import ATTRIBUTE_DEFINITIONS, GLOBAL_SECONDARY_INDEXES

    return {
        "TableName": _MEASURE_TABLE,
        "AttributeDefinitions": ATTRIBUTE_DEFINITIONS,
        "KeySchema": [{"AttributeName": "connection_id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": GLOBAL_SECONDARY_INDEXES,
        "BillingMode": "PAY_PER_REQUEST",
    }


async def _raw_load(port: int, connections: int, seconds: float) -> tuple[int, list[float]]:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []

    async def worker(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        try:
            while time.monotonic() < deadline:
                for operation, body in _cycle(number, n):
                    started = time.monotonic()
                    writer.write(_raw_request(operation, body))
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
                    answer = await reader.readexactly(length)
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(f"{operation} failed: {answer[:200]!r}")
                    latencies.append(time.monotonic() - started)
                n += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return len(latencies), latencies


def _boto3_load(port: int, connections: int, seconds: float) -> tuple[int, list[float]]:
    from realtime.registry.dynamodb import make_client  # see _create_measure_table

    client = make_client(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="testing",
        secret_access_key="testing",
        max_connections=connections,
        read_timeout=30,
    )
    methods = {
        "PutItem": client.put_item,
        "UpdateItem": client.update_item,
        "GetItem": client.get_item,
        "DeleteItem": client.delete_item,
    }
    start = threading.Barrier(connections + 1)
    latencies: list[float] = []
    deadline = [0.0]

    def worker(number: int) -> None:
        start.wait()
        n = 0
        while time.monotonic() < deadline[0]:
            for operation, body in _cycle(number, n):
                started = time.monotonic()
                methods[operation](**body)
                latencies.append(time.monotonic() - started)
            n += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds
    start.wait()
    for thread in threads:
        thread.join()
    return len(latencies), latencies


def _http(port: int, method: str, path: str, operation: str | None = None, body=None) -> dict:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": CONTENT_TYPE}
    if operation:
        headers["X-Amz-Target"] = TARGET_PREFIX + operation
    connection.request(
        method, path, body=json.dumps(body) if body is not None else None, headers=headers
    )
    response = connection.getresponse()
    answer = json.loads(response.read() or b"{}")
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{operation or path}: {response.status} {answer}")
    return answer


def measure(args) -> None:
    """Start the endpoint as a child process, load it from this one, print the figures."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.fake_dynamodb",
            "--port",
            "0",
            "--latency-ms",
            str(args.latency_ms),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        match = re.search(r"Running on http://127\.0\.0\.1:(\d+)", line)
        if not match:
            raise RuntimeError(f"the endpoint did not start: {line!r}")
        port = int(match.group(1))
        _http(port, "POST", "/", "CreateTable", _create_measure_table())
        _http(port, "POST", "/reset-stats")
        cpu = time.process_time()
        started = time.monotonic()
        if args.client == "raw":
            calls, latencies = asyncio.run(_raw_load(port, args.connections, args.seconds))
        else:
            calls, latencies = _boto3_load(port, args.connections, args.seconds)
        elapsed = time.monotonic() - started
        client_cpu = time.process_time() - cpu
        stats = _http(port, "GET", "/stats")
    finally:
        child.terminate()
        child.wait(10)
    latencies.sort()
    server_calls = sum(stats["calls"].values())

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    per_call = stats["cpu_seconds"] / max(server_calls, 1)
    print(
        f"latency {args.latency_ms:g} ms, {args.connections} {args.client} connections, "
        f"{elapsed:.1f} s: {calls / elapsed:,.0f} calls/s "
        f"(round trip p50 {percentile(0.5):.2f} ms, p99 {percentile(0.99):.2f} ms); "
        f"server CPU {per_call * 1e6:.0f} us/call, {stats['cpu_seconds'] / elapsed:.0%} of a "
        f"core (a whole core: ~{1 / max(per_call, 1e-9):,.0f} calls/s); "
        f"client CPU {client_cpu / elapsed:.0%} of a core; errors {stats['errors'] or 'none'}"
    )
