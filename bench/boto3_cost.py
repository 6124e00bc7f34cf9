"""CPU that boto3 spends per registry call: `python -m bench.boto3_cost [--calls 400]`.

The registry's throughput on one process is bounded by the CPU of its DynamoDB calls, not by
DynamoDB's latency. This measures that CPU (process time, one thread, no contention) for the
calls a connection costs, against bench.fake_dynamodb answering at once, with the registry's
client configuration (realtime.registry.make_client) and the same client with botocore's
client-side parameter validation back on; medians of rounds that alternate the two.
"""

import argparse
import statistics
import time
from collections.abc import Callable

from bench.run import TABLE, Endpoint
from realtime.core.connection import Connection
from realtime.core.handshake import ConnectionRequest
from realtime.registry.dynamodb import DynamoDBRegistry, make_client

__all__ = ["main"]


def _record() -> Connection:
    return Connection.open(
        ConnectionRequest(tenant="bench", deployment_id="bench-1", connection_type="client"),
        now=time.time(),
        ttl_seconds=3600,
        instance_id="bench-instance",
        channel_name="bench-channel",
        client_addr="127.0.0.1:1",
    )


def _cpu_ms(call: Callable[[], object], repeat: int) -> float:
    for _ in range(min(repeat, 20)):  # warm: connection pool, caches
        call()
    started = time.process_time()
    for _ in range(repeat):
        call()
    return (time.process_time() - started) / repeat * 1e3


def measure(url: str, calls: int, rounds: int = 5) -> list[tuple[str, float, float]]:
    """Median CPU per call of each client, measured in alternating rounds (both warm)."""
    registries = {}
    for label, validation in (("registry client", False), ("with parameter validation", True)):
        client = make_client(
            region="us-east-1",
            endpoint_url=url,
            access_key_id="bench",
            secret_access_key="bench",
            validate_parameters=validation,
        )
        registries[label] = DynamoDBRegistry(client=client, table_name=TABLE)
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in registries}
    for _ in range(rounds):
        for label, registry in registries.items():
            put = _cpu_ms(lambda registry=registry: registry.register(_record()), calls)
            batch = _cpu_ms(
                lambda registry=registry: registry.register_batch([_record() for _ in range(25)]),
                max(calls // 25, 4),
            )
            samples[label].append((put, batch))
    return [
        (
            label,
            statistics.median(put for put, _ in pairs),
            statistics.median(batch for _, batch in pairs),
        )
        for label, pairs in samples.items()
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args(argv)
    endpoint = Endpoint("fake", latency_ms=0).start()
    try:
        rows = measure(endpoint.url, args.calls)
    finally:
        endpoint.stop()
    print(f"{'client':<28}{'PutItem (ms CPU)':>18}{'25-put batch (ms CPU)':>24}{'per item':>10}")
    for label, put, batch in rows:
        print(f"{label:<28}{put:>18.2f}{batch:>24.2f}{batch / 25:>10.3f}")


if __name__ == "__main__":
    main()
