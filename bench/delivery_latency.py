"""Latency from a management API call to the client receiving the message.

`python -m bench.delivery_latency [--messages 300]` starts moto's server, two daphne instances
sharing it and Redis (REDIS_URL, default redis://127.0.0.1:6379/0), connects one WebSocket
client to instance A, then POSTs messages to it through A's API (same process) and through B's
API (cross-process: B -> Redis -> A -> client). Each sample runs from just before the HTTP
request is sent until the client has read the `message` frame; messages go one at a time.
"""

import argparse
import http.client
import json
import os
import statistics
import time

from websockets.sync.client import connect

from bench.processes import daphne_server, moto_server, server_env

TOKEN = "bench-token-0123456789abcdefghijklmnopqrstuv"


def post_message(port: int, connection_id: str, data) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            f"/api/connections/{connection_id}/messages",
            body=json.dumps({"data": data}),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def sample(ws, port: int, connection_id: str, n: int) -> list[float]:
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        status = post_message(port, connection_id, {"seq": i})
        frame = json.loads(ws.recv(timeout=10))
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 200 and frame == {"type": "message", "data": {"seq": i}}, (status, frame)
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()

    moto = moto_server().start()
    env = server_env(
        f"http://127.0.0.1:{moto.port}",
        "bench_delivery",
        REDIS_URL=args.redis_url,
        API_TOKENS=TOKEN,
    )
    holder = daphne_server(env).start()
    other = daphne_server(env).start()
    try:
        ws = connect(
            f"ws://127.0.0.1:{holder.port}/?tenant=bench&deployment_id=d&connection_type=client",
            legacy=True,
        )
        connection_id = json.loads(ws.recv(timeout=10))["connection_id"]
        sample(ws, holder.port, connection_id, 20)  # warm both paths up
        sample(ws, other.port, connection_id, 20)
        results = {
            "same process (API on A)": sample(ws, holder.port, connection_id, args.messages),
            "cross-process (API on B)": sample(ws, other.port, connection_id, args.messages),
        }
        ws.close()
    finally:
        holder.stop()
        other.stop()
        moto.stop()

    print(f"{args.messages} messages each, one at a time, Redis channel layer, moto DynamoDB")
    print(f"{'path':<28} {'median ms':>10} {'p99 ms':>10} {'max ms':>10}")
    for name, values in results.items():
        print(
            f"{name:<28} {statistics.median(values):>10.2f} {percentile(values, 99):>10.2f} "
            f"{max(values):>10.2f}"
        )


if __name__ == "__main__":
    main()
