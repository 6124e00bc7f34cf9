"""What clients see while DynamoDB is down, measured: `python -m bench.outage`.

Starts moto's server and daphne on loopback, opens --clients connections, then for each kind of
outage (moto frozen with SIGSTOP: TCP accepted, never answered; moto killed: connection
refused) measures how long a new connection takes to be refused, and the ping round trip of
the open connections during the outage. Prints one table.
"""

import argparse
import json
import signal
import statistics
import time

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bench.processes import daphne_server, moto_server, server_env


def open_client(port: int):
    ws = connect(
        f"ws://127.0.0.1:{port}/?tenant=bench&deployment_id=outage&connection_type=client",
        legacy=True,
    )
    return ws, json.loads(ws.recv(timeout=10))


def refusal(port: int) -> tuple[str, int, float]:
    started = time.monotonic()
    ws, first = open_client(port)
    try:
        ws.recv(timeout=30)
        code = -1
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd else -1
    return first.get("code", first["type"]), code, time.monotonic() - started


def ping_ms(clients) -> list[float]:
    samples = []
    for ws, _ in clients:
        started = time.perf_counter()
        ws.send('{"type": "ping"}')
        assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(kind: str, clients: int, attempts: int) -> dict:
    moto = moto_server().start()
    daphne = daphne_server(server_env(f"http://127.0.0.1:{moto.port}", "bench_outage")).start()
    try:
        open_clients = [open_client(daphne.port) for _ in range(clients)]
        before = ping_ms(open_clients)
        if kind == "frozen":
            moto.signal(signal.SIGSTOP)
        else:
            moto.kill()
        refusals = [refusal(daphne.port) for _ in range(attempts)]
        during = ping_ms(open_clients)
        recovered = None
        if kind == "frozen":
            moto.signal(signal.SIGCONT)
            started = time.monotonic()
            ws, first = open_client(daphne.port)
            recovered = (first["type"], time.monotonic() - started)
            ws.close()
        for ws, _ in open_clients:
            ws.close()
        return {
            "kind": kind,
            "refusals": refusals,
            "ping_before": before,
            "ping_during": during,
            "recovered": recovered,
            "alive": daphne.running,
        }
    finally:
        daphne.stop()
        if moto.running:
            moto.signal(signal.SIGCONT)
        moto.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.clients} open connections; {args.attempts} new connections per outage")
    print(
        f"{'outage':<28} {'new connection gets':<28} {'refused after (s)':<22} "
        f"{'open conns ping p50/max (ms)':<30} after recovery"
    )
    for kind, label in (("frozen", "moto frozen (SIGSTOP)"), ("killed", "moto killed (refused)")):
        result = measure(kind, args.clients, args.attempts)
        outcomes = {f"{code} + close {close}" for code, close, _ in result["refusals"]}
        seconds = [s for _, _, s in result["refusals"]]
        during = result["ping_during"]
        recovered = result["recovered"]
        print(
            f"{label:<28} {', '.join(sorted(outcomes)):<28} "
            f"{min(seconds):.2f}-{max(seconds):.2f} (median {statistics.median(seconds):.2f})"
            f"{'':<2} {statistics.median(during):.1f} / {max(during):.1f}"
            f"{'':<18} {f'{recovered[0]} in {recovered[1]:.2f}s' if recovered else 'n/a'}"
        )


if __name__ == "__main__":
    main()
