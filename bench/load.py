"""Load generator for the benchmark: `python -m bench.load <scenario> --url ws://127.0.0.1:PORT/`.

A separate process from the server, speaking the protocol over loopback with the asyncio
`websockets` client, and printing one JSON object of results on stdout. Scenarios:

- `setup`: C workers (--concurrency) each connect, read `connected`, close, and go again,
  for --count connections or --duration seconds. Connections per second, and the time from
  the start of the TCP connect to `connected` received (p50/p99/max).
- `echo`: open --connections, then for --duration seconds (after --warmup) every connection
  sends a message and awaits its echo, --window messages in flight each (1: a closed loop).
  Messages per second and round trip p50/p99.
- `hold`: open --connections (bounded by --concurrency), check each got `connected`, print
  `HOLDING <n>` on stderr, keep them idle until a line (or EOF) on stdin, SIGTERM/SIGINT, or
  --hold-seconds, then close them all. Open and close times, connections lost while idle.
- `ping`: open --connections; each sends `{"type":"ping"}` every --interval seconds (first
  one at a random offset) for --duration seconds from its own `connected`, then closes.
  Pings, pong round trip, and the connection-seconds held (for writes per connection-hour).

`setup` and `echo` print `MARK measure_start` and `MARK measure_end` on stderr around the
measured window, for a supervisor that samples the server's CPU time meanwhile.

Clients offer no permessage-deflate (daphne never negotiates it; --deflate offers it) and send
no keepalive pings of their own. Loopback addresses only. Efficiency matters: the generator
shares the machine with the server, so the hot loops do no JSON parsing, and the process
reports its own CPU time (`client_cpu_seconds`).
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import stat
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

__all__ = ["main", "percentile"]

DEFAULT_QUERY = "tenant=bench&deployment_id=bench-1&connection_type=client"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
        "samples": len(ms),
    }


def raise_nofile() -> int:
    """Raise the soft limit on open files to the hard limit (children inherit it); returns the
    new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Client:
    def __init__(self, url: str, *, deflate: bool, open_timeout: float):
        self.url = url
        self.deflate = deflate
        self.open_timeout = open_timeout
        self.failures: Counter[str] = Counter()
        self.opened_at: dict[int, float] = {}  # id(connection) -> when `connected` came
        self.connection_seconds = 0.0  # summed over closed connections, open to closed

    def connect(self):
        return connect(
            self.url,
            compression="deflate" if self.deflate else None,
            proxy=None,  # never through a proxy from the environment: loopback only
            user_agent_header=None,
            open_timeout=self.open_timeout,
            ping_interval=None,
            close_timeout=5,
        )

    async def open(self) -> tuple[ClientConnection, float] | None:
        """Connect and read `connected`. Returns (connection, seconds to `connected`)."""
        started = time.perf_counter()
        try:
            ws = await self.connect()
        except Exception as exc:
            self.failures[f"connect:{type(exc).__name__}"] += 1
            return None
        try:
            first = await asyncio.wait_for(ws.recv(), self.open_timeout)
        except Exception as exc:
            self.failures[f"first_frame:{type(exc).__name__}"] += 1
            await self.abandon(ws)
            return None
        now = time.perf_counter()
        if not isinstance(first, str) or '"connected"' not in first[:24]:
            self.failures[f"refused:{first[:120]!s}"] += 1
            await self.abandon(ws)
            return None
        self.opened_at[id(ws)] = now
        return ws, now - started

    async def open_many(
        self, n: int, concurrency: int
    ) -> tuple[list[ClientConnection], list[float]]:
        connections: list[ClientConnection] = []
        latencies: list[float] = []
        issued = 0

        async def worker() -> None:
            nonlocal issued
            while issued < n:
                issued += 1
                opened = await self.open()
                if opened:
                    connections.append(opened[0])
                    latencies.append(opened[1])

        await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
        return connections, latencies

    async def abandon(self, ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await ws.close()

    async def close(self, ws: ClientConnection) -> None:
        try:
            await ws.close()
        except Exception as exc:
            self.failures[f"close:{type(exc).__name__}"] += 1
        opened = self.opened_at.pop(id(ws), None)
        if opened is not None:
            self.connection_seconds += time.perf_counter() - opened

    async def close_many(self, connections: list[ClientConnection], concurrency: int) -> None:
        pending = iter(connections)

        async def worker() -> None:
            for ws in pending:
                await self.close(ws)

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(connections))))))


def mark(name: str) -> None:
    """Tell a supervising process (bench.run) that a phase starts or ends, on stderr."""
    print(f"MARK {name}", file=sys.stderr, flush=True)


async def timed(coro: Awaitable) -> tuple[object, float]:
    started = time.perf_counter()
    result = await coro
    return result, time.perf_counter() - started


# --- scenarios ------------------------------------------------------------------------------


async def run_setup(client: Client, args) -> dict:
    latencies: list[float] = []
    issued = 0
    count = args.count if args.count else None
    cpu_before = cpu_seconds()
    mark("measure_start")
    started = time.perf_counter()
    deadline = started + args.duration if args.duration else None

    async def worker() -> None:
        nonlocal issued
        while True:
            if count is not None and issued >= count:
                return
            if deadline is not None and time.perf_counter() >= deadline:
                return
            issued += 1
            opened = await client.open()
            if opened is None:
                continue
            ws, elapsed = opened
            latencies.append(elapsed)
            await client.close(ws)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    mark("measure_end")
    return {
        "connections": len(latencies),
        "attempts": issued,
        "seconds": elapsed,
        "connections_per_second": len(latencies) / elapsed if elapsed else 0.0,
        "time_to_connected": summary_ms(latencies),
        "client_cpu_seconds_measured": cpu_seconds() - cpu_before,
    }


async def run_echo(client: Client, args) -> dict:
    (connections, open_latencies), open_seconds = await timed(
        client.open_many(args.connections, args.concurrency)
    )
    payload = json.dumps({"type": "bench", "seq": 0, "pad": "x" * max(0, args.size - 40)})
    latencies: list[float] = []
    counted = 0
    bad = 0
    measuring = False
    stopping = False

    async def closed_loop(ws: ClientConnection) -> None:
        nonlocal counted, bad
        send, recv, clock = ws.send, ws.recv, time.perf_counter
        while not stopping:
            sent = clock()
            await send(payload)
            reply = await recv()
            if measuring:
                latencies.append(clock() - sent)
                counted += 1
                if '"echo"' not in reply[:16]:
                    bad += 1

    async def windowed(ws: ClientConnection) -> None:
        nonlocal counted, bad
        send, recv, clock = ws.send, ws.recv, time.perf_counter
        in_flight: list[float] = []
        for _ in range(args.window):
            in_flight.append(clock())
            await send(payload)
        head = 0
        while True:
            reply = await recv()
            sent = in_flight[head]
            head += 1
            if measuring:
                latencies.append(clock() - sent)
                counted += 1
                if '"echo"' not in reply[:16]:
                    bad += 1
            if stopping:
                if head == len(in_flight):
                    return
                continue
            in_flight.append(clock())
            await send(payload)
            if head > 4096:
                del in_flight[:head]
                head = 0

    loop_fn = closed_loop if args.window <= 1 else windowed

    async def guarded(ws: ClientConnection) -> None:
        try:
            await loop_fn(ws)
        except Exception as exc:
            client.failures[f"echo:{type(exc).__name__}"] += 1

    tasks = [asyncio.ensure_future(guarded(ws)) for ws in connections]
    await asyncio.sleep(args.warmup)
    cpu_before = cpu_seconds()
    mark("measure_start")
    measuring = True
    started = time.perf_counter()
    await asyncio.sleep(args.duration)
    measuring = False
    elapsed = time.perf_counter() - started
    mark("measure_end")
    cpu_measured = cpu_seconds() - cpu_before
    stopping = True
    _, stragglers = await asyncio.wait(tasks, timeout=10) if tasks else (None, set())
    for task in stragglers:
        task.cancel()
    await client.close_many(connections, args.concurrency)
    return {
        "connections": len(connections),
        "open_seconds": open_seconds,
        "time_to_connected": summary_ms(open_latencies),
        "window": args.window,
        "message_bytes": len(payload),
        "seconds": elapsed,
        "messages": counted,
        "messages_per_second": counted / elapsed if elapsed else 0.0,
        "unexpected_replies": bad,
        "round_trip": summary_ms(latencies),
        "client_cpu_seconds_measured": cpu_measured,
    }


async def wait_for_release(hold_seconds: float) -> str:
    """Until a line or EOF on stdin (a pipe or a terminal), a signal, or the time is up."""
    loop = asyncio.get_running_loop()
    released: asyncio.Future[str] = loop.create_future()

    def release(why: str) -> None:
        if not released.done():
            released.set_result(why)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, release, signal.Signals(signum).name)
    watching_stdin = False
    with contextlib.suppress(OSError, ValueError):
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
        if os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):

            def on_stdin() -> None:
                os.read(fd, 4096)  # a line, or b"" at EOF: either way, release
                release("stdin")

            loop.add_reader(fd, on_stdin)
            watching_stdin = True
    try:
        return await asyncio.wait_for(released, hold_seconds)
    except TimeoutError:
        return "hold_seconds"
    finally:
        if watching_stdin:
            loop.remove_reader(fd)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def run_hold(client: Client, args) -> dict:
    limit = raise_nofile()
    (connections, latencies), open_seconds = await timed(
        client.open_many(args.connections, args.concurrency)
    )
    print(f"HOLDING {len(connections)}", file=sys.stderr, flush=True)
    held_from = time.perf_counter()
    released_by = await wait_for_release(args.hold_seconds)
    held = time.perf_counter() - held_from
    lost = sum(1 for ws in connections if ws.state is not State.OPEN)
    _, close_seconds = await timed(client.close_many(connections, args.concurrency))
    return {
        "requested": args.connections,
        "connections": len(connections),
        "nofile_limit": limit,
        "open_seconds": open_seconds,
        "open_rate": len(connections) / open_seconds if open_seconds else 0.0,
        "time_to_connected": summary_ms(latencies),
        "held_seconds": held,
        "released_by": released_by,
        "lost_while_idle": lost,
        "close_seconds": close_seconds,
    }


async def run_ping(client: Client, args) -> dict:
    raise_nofile()
    gate = asyncio.Semaphore(args.concurrency)  # connects (and closes) in flight
    open_latencies: list[float] = []
    latencies: list[float] = []
    pings = 0
    bad = 0
    opened = 0
    message = '{"type":"ping"}'

    async def pinger(ws: ClientConnection, deadline: float) -> None:
        nonlocal pings, bad
        clock = time.perf_counter
        next_at = clock() + random.uniform(0, args.interval)
        while next_at < deadline:
            await asyncio.sleep(max(0.0, next_at - clock()))
            sent = clock()
            await ws.send(message)
            reply = await ws.recv()
            latencies.append(clock() - sent)
            pings += 1
            if '"pong"' not in reply[:16]:
                bad += 1
            next_at += args.interval  # a fixed schedule: no drift from slow pongs

    async def life() -> None:
        # Each connection lives --duration from its own `connected`: a compressed hour of
        # pinging, whatever the time the others took to open.
        nonlocal opened
        async with gate:
            result = await client.open()
        if result is None:
            return
        ws, elapsed = result
        opened += 1
        open_latencies.append(elapsed)
        try:
            await pinger(ws, time.perf_counter() + args.duration)
        except Exception as exc:
            client.failures[f"ping:{type(exc).__name__}"] += 1
        async with gate:
            await client.close(ws)

    started = time.perf_counter()
    await asyncio.gather(*(life() for _ in range(args.connections)))
    return {
        "connections": opened,
        "time_to_connected": summary_ms(open_latencies),
        "interval_seconds": args.interval,
        "seconds": args.duration,
        "wall_seconds_pinging": time.perf_counter() - started,
        "pings": pings,
        "unexpected_replies": bad,
        "pong_round_trip": summary_ms(latencies),
        # Summed over connections, from `connected` received to the close handshake done.
        "connection_seconds": client.connection_seconds,
    }


SCENARIOS: dict[str, Callable[[Client, argparse.Namespace], Awaitable[dict]]] = {
    "setup": run_setup,
    "echo": run_echo,
    "hold": run_hold,
    "ping": run_ping,
}


def loopback_url(url: str) -> str:
    """The URL with the default query added when it has none; refuses non-loopback hosts."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname not in LOOPBACK:
        raise SystemExit(f"bench.load only talks to ws:// on loopback, not {url!r}")
    if not parts.query:
        url = f"{url}{'' if parts.path else '/'}?{DEFAULT_QUERY}"
    return url


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ (query added if absent)")
    p.add_argument("--connections", "-n", type=int, default=100, help="echo, hold, ping")
    p.add_argument("--concurrency", "-c", type=int, default=50, help="connects in flight")
    p.add_argument("--count", type=int, default=0, help="setup: connections (0: --duration)")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of measurement (setup without --count, echo: 10; ping: 60)",
    )
    p.add_argument("--warmup", type=float, default=1.0, help="echo: seconds before measuring")
    p.add_argument("--window", type=int, default=1, help="echo: messages in flight each")
    p.add_argument("--size", type=int, default=64, help="echo: message size, bytes")
    p.add_argument("--interval", type=float, default=25.0, help="ping: seconds between pings")
    p.add_argument("--hold-seconds", type=float, default=600.0, help="hold: longest hold")
    p.add_argument("--open-timeout", type=float, default=30.0)
    p.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    return p


async def amain(args) -> dict:
    client = Client(args.url, deflate=args.deflate, open_timeout=args.open_timeout)
    cpu_before = cpu_seconds()
    wall_started = time.perf_counter()
    result = await SCENARIOS[args.scenario](client, args)
    return {
        "scenario": args.scenario,
        "url": args.url,
        **result,
        "failures": dict(client.failures),
        "failure_count": sum(client.failures.values()),
        "client_cpu_seconds": cpu_seconds() - cpu_before,
        "wall_seconds": time.perf_counter() - wall_started,
    }


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.url = loopback_url(args.url)
    if args.duration is None:
        if args.scenario == "setup" and args.count:
            args.duration = 0.0  # the count alone bounds it
        else:
            args.duration = 60.0 if args.scenario == "ping" else 10.0
    result = asyncio.run(amain(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
