"""One instance of two restarted under load: `python -m bench.rolling_restart`.

Two daphne processes share moto's server and Redis (127.0.0.1:6379, or --redis). --clients
connections are opened, half on each instance, each client reconnecting as soon as it is
closed, as real clients do. Then one instance gets SIGTERM and, at the same moment, leaves
the rotation (as a load balancer or Kubernetes takes a terminating target out), so every
reconnect goes to the survivor. Measured, for each --spread (the leaving instance's
DRAIN_SPREAD_SECONDS; 0 is the drain as it was, every client closed at once):

- the peak handshakes per second on the survivor: reconnects started (offered) and
  `connected` received (accepted), in the busiest one-second window;
- the seconds from SIGTERM until every moved client is connected again;
- each moved client's time without a connection, from its close to its `connected`;
- refused reconnects (1013 while the survivor was too slow, or a connection error);
- the leaving instance's `server.drained` line, and the table's items at the end (every
  client once: the table is exact).

The clients run in this process's event loop, on loopback only; every phase is bounded in
time. Prints one table; --json prints the raw results.
"""

import argparse
import asyncio
import contextlib
import json
import random
import re
import signal
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect

from bench.fleet import Table
from bench.load import percentile, raise_nofile, summary_ms
from bench.processes import daphne_server, moto_server, server_env

QUERY = "tenant=bench&deployment_id=rolling&connection_type=client"
RETRY_SECONDS = 0.5  # a refused reconnect waits this long (jittered) before the next try


@dataclass
class Rotation:
    """The ports a load balancer would send new connections to."""

    ports: list[int]
    next_index: int = 0

    def pick(self) -> int:
        self.next_index += 1
        return self.ports[self.next_index % len(self.ports)]


@dataclass
class Observed:
    """What the clients saw, on the monotonic clock."""

    attempts: dict[int, list[float]] = field(default_factory=dict)  # port -> reconnects started
    accepted: dict[int, list[float]] = field(default_factory=dict)  # port -> `connected`
    gaps: list[float] = field(default_factory=list)  # close -> `connected` again
    closes: dict[int, int] = field(default_factory=dict)  # close code -> count
    refused: int = 0
    connected: int = 0  # clients connected right now


async def client_loop(rotation: Rotation, seen: Observed, stop: asyncio.Event) -> None:
    """Connect, hold until closed, reconnect, until `stop`."""
    closed_at: float | None = None
    while not stop.is_set():
        port = rotation.pick()
        if closed_at is not None:
            seen.attempts.setdefault(port, []).append(time.monotonic())
        try:
            ws = await connect(
                f"ws://127.0.0.1:{port}/?{QUERY}",
                proxy=None,  # loopback only, never through a proxy from the environment
                user_agent_header=None,
                open_timeout=30,
                ping_interval=None,
                close_timeout=5,
            )
        except Exception:
            seen.refused += 1
            await asyncio.sleep(RETRY_SECONDS * random.uniform(0.5, 1.5))
            continue
        async with ws:
            try:
                first = await asyncio.wait_for(ws.recv(), 30)
            except Exception:  # closed before `connected` (1013), or no answer
                first = ""
            if '"connected"' not in first[:24]:
                seen.refused += 1
                await asyncio.sleep(RETRY_SECONDS * random.uniform(0.5, 1.5))
                continue
            now = time.monotonic()
            seen.accepted.setdefault(port, []).append(now)
            if closed_at is not None:
                seen.gaps.append(now - closed_at)
            seen.connected += 1
            closing = asyncio.ensure_future(ws.wait_closed())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([closing, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            seen.connected -= 1
            if stop.is_set():
                return
            closed_at = time.monotonic()
            code = ws.close_code or 0
            seen.closes[code] = seen.closes.get(code, 0) + 1


def peak_per_second(times: list[float]) -> int:
    """The most events in any one-second window."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def restart_once(args, moto_url: str, spread: float) -> dict:
    table = Table(moto_url)
    drain = {"DRAIN_SECONDS": str(args.drain), "DRAIN_SPREAD_SECONDS": str(spread)}
    # Every client here comes from 127.0.0.1, where real ones come from many addresses: the
    # per-address bounds (0: off) would measure themselves instead of the restart.
    unbounded = {"WS_ADDRESS_MAX_CONNECTIONS": "0", "WS_ADDRESS_HANDSHAKE_RATE": "0"}
    env = server_env(moto_url, table.name, REDIS_URL=args.redis, **drain, **unbounded)
    leaving = daphne_server(env).start()
    survivor = daphne_server(env).start()
    seen = Observed()
    stop = asyncio.Event()
    rotation = Rotation([leaving.port, survivor.port])
    clients: list[asyncio.Task] = []
    try:
        # Open them in waves, as a fleet fills up, not in one burst the emulator would queue.
        for _ in range(0, args.clients, args.wave):
            wave = min(args.wave, args.clients - len(clients))
            clients += [
                asyncio.ensure_future(client_loop(rotation, seen, stop)) for _ in range(wave)
            ]
            opened = len(clients)
            if not await until(lambda n=opened: seen.connected >= n, timeout=60):
                raise RuntimeError(f"only {seen.connected} of {opened} clients connected")
        moved = len(seen.accepted.get(leaving.port, []))
        await asyncio.sleep(2)  # settled: the survivor idle again

        rotation.ports = [survivor.port]
        signalled = time.monotonic()
        leaving.signal(signal.SIGTERM)
        before = len(seen.accepted.get(survivor.port, []))
        back = await until(
            lambda: (
                len(seen.accepted.get(survivor.port, [])) - before >= moved
                and seen.connected == args.clients
            ),
            timeout=args.drain + 60,
        )
        all_back = time.monotonic() - signalled if back else None
        exit_code = await asyncio.to_thread(leaving.process.wait, args.drain + 15)
        drained = next((line for line in leaving.lines if "server.drained" in line), "")
        items = await asyncio.to_thread(lambda: len(table.connection_ids()))
        attempts = [t for t in seen.attempts.get(survivor.port, []) if t >= signalled]
        accepted = [t for t in seen.accepted.get(survivor.port, []) if t >= signalled]
        return {
            "spread_seconds": spread,
            "clients": args.clients,
            "moved": moved,
            "peak_attempts_per_second": peak_per_second(attempts),
            "peak_accepted_per_second": peak_per_second(accepted),
            "all_back_seconds": all_back,
            "gap": summary_ms(seen.gaps),
            "gap_p90_ms": percentile([g * 1000 for g in seen.gaps], 90),
            "refused": seen.refused,
            "close_codes": seen.closes,
            "drained": re.sub(r"^.*?(server\.drained)", r"\1", drained),
            "exit_code": exit_code,
            "table_items": items,
        }
    finally:
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
        for process in (leaving, survivor):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(process.stop)


def print_table(results: list[dict]) -> None:
    rows = [
        ("DRAIN_SPREAD_SECONDS", lambda r: f"{r['spread_seconds']:g}"),
        ("clients moved", lambda r: f"{r['moved']} of {r['clients']}"),
        ("survivor: peak reconnects started /s", lambda r: str(r["peak_attempts_per_second"])),
        ("survivor: peak handshakes accepted /s", lambda r: str(r["peak_accepted_per_second"])),
        ("every client back after (s)", lambda r: _seconds(r["all_back_seconds"])),
        (
            "per client, closed to connected p50 / p99 / max (ms)",
            lambda r: " / ".join(_ms(r["gap"][k]) for k in ("p50_ms", "p99_ms", "max_ms")),
        ),
        ("refused reconnects", lambda r: str(r["refused"])),
        (
            "close codes",
            lambda r: ", ".join(f"{c}: {n}" for c, n in sorted(r["close_codes"].items())),
        ),
        ("leaving instance", lambda r: r["drained"] or "(no server.drained line)"),
        ("table items afterwards", lambda r: str(r["table_items"])),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  " + "  |  ".join(value(r) for r in results))


def _seconds(value: float | None) -> str:
    return "not all back" if value is None else f"{value:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


async def run(args) -> list[dict]:
    moto = moto_server().start()
    try:
        moto_url = f"http://127.0.0.1:{moto.port}"
        results = []
        for spread in args.spreads:
            print(f"... DRAIN_SPREAD_SECONDS={spread:g}", flush=True)
            results.append(await restart_once(args, moto_url, spread))
        return results
    finally:
        with contextlib.suppress(Exception):
            moto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument(
        "--spreads", type=float, nargs="+", default=[0.0, 10.0], help="DRAIN_SPREAD_SECONDS"
    )
    parser.add_argument("--drain", type=float, default=20.0, help="DRAIN_SECONDS")
    parser.add_argument("--wave", type=int, default=200, help="clients opened at a time")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.clients < 2 or args.clients > 20_000:
        parser.error("--clients must be between 2 and 20000")
    raise_nofile()
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
