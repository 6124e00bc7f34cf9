"""Our server against the seed's: `python -m bench.run [--endpoint fake|moto|both] [--quick]`.

Starts a DynamoDB endpoint (moto's server, and/or bench.fake_dynamodb, which answers after a
fixed latency), creates the registry table, then starts each server as a process on loopback
and drives it with bench.load, another process:

- ours: `daphne project.asgi:application` (or uvicorn, --server-cmd), as deployed, with
  DEBUG off and no per-connection message rate limit (WS_RATE_PER_SECOND=0);
- the reference: bench.reference_server, the seed's design (`websockets`, boto3 through
  `asyncio.to_thread`, no Django; one DynamoDB write per ping).

For each endpoint it prints one table, ours next to the reference, with ours/reference ratios:

- connection setup: C concurrent clients connect, wait for `connected`, close, for a fixed
  time; connections per second and time to `connected` (from the TCP connect). Also with the
  registry off (REGISTRY_ENABLED=false on both servers), for what the registry costs: a
  second server process with the registry off runs beside the first, and rounds alternate
  between them (the machine's speed drifts within minutes); each side's median round counts;
- echo: N connections in a closed loop (send, await the echo, repeat); messages per second,
  round trip p50/p99, and the server's CPU time per message (from /proc, over the measured
  window only);
- memory: the server's resident set (VmRSS) before and while N idle connections are open,
  the difference divided by N; each N on a freshly started server, after a small warm-up;
- DynamoDB writes per connection-hour for clients that ping every 25 s, on the fake endpoint
  (its /stats counts writes; moto has no such count). An hour is compressed by a factor F
  (--ping-scale, 30 by default): each connection pings every 25/F s for 3600/F s, with our
  server's CONNECTION_TTL_SECONDS and TTL_REFRESH_SECONDS divided by F as well, so that every
  interval that decides a write keeps its ratio to the others and the count maps to an hour at
  the defaults (3600 s, 300 s): writes per connection-hour = all item writes (PutItem,
  UpdateItem, DeleteItem, batch and transaction items) / connections. Both servers run this
  phase at the same time, each against an endpoint of its own.

Everything shares this machine: the server, the load generator and the endpoint compete for
the same cores (`nproc` is in the output), so absolute numbers are this machine's; the ratios
are the point; CPU used meanwhile by other processes is measured and flagged. Raw results go
to bench/results/<timestamp>.json. --quick is a smoke run with small numbers (about a minute,
on the fake endpoint unless --endpoint says otherwise), not a measurement.
"""

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from bench.load import raise_nofile
from tests.processes import (
    ROOT,
    UVICORN_WS,
    ServerProcess,
    base_env,
    daphne_server,
    moto_server,
    server_env,
    uvicorn_server,
)

__all__ = ["main"]

RESULTS_DIR = ROOT / "bench" / "results"
TABLE = "bench_connections"
QUERY = "tenant=bench&deployment_id=bench-1&connection_type=client"
HTTP_READY = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
DAPHNE_READY = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")
# The defaults the written-per-hour figure maps to.
TTL_DEFAULT, REFRESH_DEFAULT, PING_INTERVAL = 3600, 300, 25.0


@dataclass
class Config:
    quick: bool = False
    warmup_count: int = 200
    setup_seconds: float = 6.0
    setup_rounds: int = 3
    setup_concurrency: int = 50
    unloaded_seconds: float = 3.0
    echo_connections: int = 100
    echo_seconds: float = 10.0
    echo_warmup: float = 1.0
    hold_sizes: list[int] = field(default_factory=lambda: [1000, 10000])
    hold_concurrency: int = 100
    ping_connections: int = 100
    ping_scale: int = 30
    fake_latency_ms: float = 5.0
    server_cmd: str = "daphne"
    uvicorn_ws: str = UVICORN_WS
    deflate: bool = False
    settle_seconds: float = 2.0
    fresh_server_per_hold: bool = True

    @classmethod
    def quick_run(cls, **overrides) -> "Config":
        quick = {
            "quick": True,
            "warmup_count": 30,
            "setup_seconds": 1.5,
            "setup_rounds": 1,
            "setup_concurrency": 20,
            "unloaded_seconds": 0.5,
            "echo_connections": 20,
            "echo_seconds": 1.5,
            "echo_warmup": 0.5,
            "hold_sizes": [200],
            "hold_concurrency": 50,
            "ping_connections": 20,
            "ping_scale": 300,  # 12 s for the compressed hour
            "settle_seconds": 0.5,
            "fresh_server_per_hold": False,
        }
        return cls(**{**quick, **overrides})


# --- processes ------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """The process's resident set size (VmRSS), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15


def start_server(process: ServerProcess) -> ServerProcess:
    process.start(timeout=60)
    if not process.running or not process.port:
        raise RuntimeError(f"{process.name} did not start:\n{process.output[-3000:]}")
    return process


def in_parallel(calls: list[Callable[[], object]]) -> None:
    """Run the calls on threads of their own (process starts: mostly waiting); re-raise."""
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def stop_server(process: ServerProcess) -> None:
    if process.process is not None:
        process.stop(timeout=30)


@contextlib.contextmanager
def running(process: ServerProcess) -> Iterator[ServerProcess]:
    start_server(process)
    try:
        yield process
    finally:
        process.stop(timeout=30)


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
            return "moto server (tests.serial_moto: one request at a time)"
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
    """DynamoDB item writes in a /stats answer: (total, calls per write operation).

    The total is the endpoint's `item_writes` (items written or deleted, BatchWriteItem and
    TransactWriteItems counted per item); without it, one per write call.
    """
    calls = stats.get("calls", {})
    per = {
        op: calls.get(op, 0)
        for op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
    }
    total = stats.get("item_writes")
    return (total if isinstance(total, int) else sum(per.values())), per


# --- the servers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """How to start one of the compared servers."""

    key: str  # "ours" or "reference"
    label: str
    make: Callable[..., ServerProcess]


def ours(cfg: Config) -> Server:
    def make(endpoint_url: str, *, registry: bool = True, **env: str) -> ServerProcess:
        environment = server_env(
            endpoint_url,
            TABLE,
            DEBUG="false",  # production settings; the table exists already
            WS_RATE_PER_SECOND="0",
            REGISTRY_ENABLED="true" if registry else "false",
            **env,
        )
        if cfg.server_cmd == "daphne":
            return daphne_server(environment)
        return uvicorn_server(environment, ws=cfg.uvicorn_ws)

    label = "daphne" if cfg.server_cmd == "daphne" else f"uvicorn --ws {cfg.uvicorn_ws}"
    return Server("ours", f"ours ({label})", make)


def reference(cfg: Config) -> Server:
    def make(endpoint_url: str, *, registry: bool = True, **env: str) -> ServerProcess:
        environment = base_env(
            DYNAMODB_ENDPOINT_URL=endpoint_url,
            DYNAMODB_TABLE_NAME=TABLE,
            REGISTRY_ENABLED="true" if registry else "false",
            **env,
        )
        return ServerProcess(
            [sys.executable, "-m", "bench.reference_server", "--host", "127.0.0.1", "--port", "0"],
            env=environment,
            ready=DAPHNE_READY,
            name="reference_server",
        )

    return Server("reference", "reference (seed design)", make)


# --- the load generator ---------------------------------------------------------------------


class Load:
    """bench.load as a child process; its stderr lines are watched as they come."""

    def __init__(
        self,
        scenario: str,
        port: int,
        options: list[str],
        *,
        deflate: bool = False,
        on_line: Callable[[str], None] | None = None,
    ):
        args = [
            sys.executable,
            "-m",
            "bench.load",
            scenario,
            "--url",
            f"ws://127.0.0.1:{port}/?{QUERY}",
            *options,
        ]
        if deflate:
            args.append("--deflate")
        self.args = args
        self.on_line = on_line
        self.stderr: list[str] = []
        self.holding = threading.Event()
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            line = line.rstrip("\n")
            self.stderr.append(line)
            if self.on_line:
                self.on_line(line)
            if line.startswith("HOLDING"):
                self.holding.set()
        self.holding.set()  # exited: stop waiting

    def release(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.process.stdin.write("close\n")
            self.process.stdin.flush()

    def result(self, timeout: float) -> dict:
        # Not communicate(): it would read stderr too, from under the watching thread.
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        timer = threading.Timer(timeout, self.process.kill)
        timer.start()
        try:
            stdout = self.process.stdout.read()
            self.process.wait()
        finally:
            timer.cancel()
        self._reader.join(5)
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        if self.process.returncode == -signal.SIGKILL:
            raise RuntimeError(
                f"bench.load did not finish in {timeout:.0f}s: {' '.join(self.args)}\n"
                + "\n".join(self.stderr[-20:])
            )
        if self.process.returncode != 0 or not lines:
            raise RuntimeError(
                f"bench.load failed ({self.process.returncode}): {' '.join(self.args)}\n"
                + "\n".join(self.stderr[-20:])
            )
        return json.loads(lines[-1])


def system_busy_seconds() -> float:
    """CPU time spent by the whole machine (all cores, all processes), in seconds."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


@dataclass
class Snapshot:
    at: float
    server: float
    watched: float  # the endpoint(s)
    runner: float
    system: float

    @classmethod
    def take(cls, server_pid: int, watched: list[int]) -> "Snapshot":
        return cls(
            at=time.perf_counter(),
            server=cpu_seconds(server_pid),
            watched=sum(cpu_seconds(pid) for pid in watched),
            runner=time.process_time(),
            system=system_busy_seconds(),
        )


def measured_load(
    scenario: str,
    server: ServerProcess,
    options: list[str],
    cfg: Config,
    *,
    watched: list[int],
    timeout: float,
) -> dict:
    """Run bench.load, sampling CPU times at its `MARK measure_start` and `MARK measure_end`.

    Adds the server's CPU time over the measured window and how much CPU other processes of
    the machine used meanwhile (`other_cpu_cores`: everything that was neither the server, the
    load generator, the endpoint nor this runner, in cores): a busy machine shows there.
    """
    pid = server.process.pid
    marks: dict[str, Snapshot] = {}

    def on_line(line: str) -> None:
        if line.startswith("MARK "):
            marks[line[5:]] = Snapshot.take(pid, watched)

    load = Load(scenario, server.port, options, deflate=cfg.deflate, on_line=on_line)
    result = load.result(timeout=timeout)
    start, end = marks.get("measure_start"), marks.get("measure_end")
    if start and end and end.at > start.at:
        wall = end.at - start.at
        server_cpu = end.server - start.server
        others = (
            (end.system - start.system)
            - server_cpu
            - (end.watched - start.watched)
            - (end.runner - start.runner)
            - result.get("client_cpu_seconds_measured", 0.0)
        )
        result.update(
            server_cpu_seconds_measured=server_cpu,
            server_cpu_cores=server_cpu / wall,
            endpoint_cpu_cores=(end.watched - start.watched) / wall,
            client_cpu_cores=result.get("client_cpu_seconds_measured", 0.0) / wall,
            other_cpu_cores=max(0.0, others / wall),
        )
    return result


def run_setup(
    server: ServerProcess,
    cfg: Config,
    *,
    seconds: float,
    concurrency: int,
    watched: list[int],
) -> dict:
    result = measured_load(
        "setup",
        server,
        ["--duration", str(seconds), "--concurrency", str(concurrency)],
        cfg,
        watched=watched,
        timeout=seconds + 120,
    )
    cpu = result.get("server_cpu_seconds_measured")
    if cpu is not None and result["connections"]:
        result["server_cpu_ms_per_connection"] = cpu * 1000 / result["connections"]
    return result


def warm_up(server: ServerProcess, cfg: Config, count: int | None = None) -> None:
    """Imports, thread pools, DynamoDB connections: paid before anything is measured."""
    count = cfg.warmup_count if count is None else count
    load = Load(
        "setup", server.port, ["--count", str(count), "--concurrency", "20"], deflate=cfg.deflate
    )
    load.result(timeout=120)


def run_echo(server: ServerProcess, cfg: Config, *, watched: list[int]) -> dict:
    result = measured_load(
        "echo",
        server,
        [
            "--connections",
            str(cfg.echo_connections),
            "--duration",
            str(cfg.echo_seconds),
            "--warmup",
            str(cfg.echo_warmup),
            "--concurrency",
            str(min(cfg.echo_connections, 50)),
        ],
        cfg,
        watched=watched,
        timeout=cfg.echo_seconds + cfg.echo_warmup + 120,
    )
    cpu = result.get("server_cpu_seconds_measured")
    if cpu is not None and result["messages"]:
        result["server_cpu_us_per_message"] = cpu * 1e6 / result["messages"]
    return result


def run_hold(server: ServerProcess, n: int, cfg: Config, endpoint: Endpoint) -> dict:
    """Open n idle connections: the server's RSS per connection, and whether the table holds
    exactly one item per open connection while they are open and none once they closed."""
    pid = server.process.pid
    time.sleep(cfg.settle_seconds)
    items_before = item_count(endpoint)
    before = rss_kib(pid)
    load = Load(
        "hold",
        server.port,
        [
            "--connections",
            str(n),
            "--concurrency",
            str(cfg.hold_concurrency),
            "--hold-seconds",
            "600",
        ],
        deflate=cfg.deflate,
    )
    if not load.holding.wait(timeout=600):
        load.process.kill()
        raise RuntimeError(f"hold {n}: the connections were not open in 600 s")
    time.sleep(cfg.settle_seconds)  # let the server finish what the last handshakes started
    during = rss_kib(pid)
    items_holding = item_count(endpoint)
    load.release()
    result = load.result(timeout=600)
    held = result["connections"]
    deadline = time.monotonic() + 60  # deregistrations finish after the clients are gone
    while (items_after := item_count(endpoint)) != items_before and time.monotonic() < deadline:
        time.sleep(0.5)
    result.update(
        server_rss_before_kib=before,
        server_rss_holding_kib=during,
        rss_per_connection_kib=(during - before) / held if held else None,
        registry_items_holding=items_holding - items_before,
        registry_items_after_close=items_after - items_before,
        registry_exact=items_holding - items_before == held and items_after == items_before,
    )
    return result


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


def registry_written(port: int, endpoint: Endpoint) -> bool | None:
    """Whether a new connection to the server got an item in the table (None: unknown)."""
    from websockets.sync.client import connect

    try:
        with connect(
            f"ws://127.0.0.1:{port}/?{QUERY}", proxy=None, compression=None, open_timeout=10
        ) as ws:
            connection_id = json.loads(ws.recv(timeout=10))["connection_id"]
            item = (
                endpoint.client()
                .get_item(
                    TableName=TABLE,
                    Key={"connection_id": {"S": connection_id}},
                    ConsistentRead=True,
                )
                .get("Item")
            )
        return item is not None
    except Exception as exc:
        print(f"  (could not check whether the registry is off: {exc!r})", file=sys.stderr)
        return None


# --- phases -------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_server(server: Server, endpoint: Endpoint, cfg: Config) -> dict:
    results: dict = {"label": server.label, "hold": {}}
    watched = [endpoint.process.process.pid]
    say(f"{endpoint.kind}: {server.label}: setup (registry on and off, alternating) and echo")
    with running(server.make(endpoint.url)) as process:
        # Stopped before the echo, so that it cannot disturb it.
        with running(server.make(endpoint.url, registry=False)) as unregistered:
            warm_up(unregistered, cfg)
            written = registry_written(unregistered.port, endpoint)
            results["registry_off_honoured"] = None if written is None else not written
            warm_up(process, cfg)
            results["setup_unloaded"] = run_setup(
                process, cfg, seconds=cfg.unloaded_seconds, concurrency=1, watched=watched
            )
            # The machine's speed drifts by several percent within minutes, so the registry's
            # cost is measured in alternating rounds, on and off, and each side's median taken.
            rounds: dict[str, list[dict]] = {"setup": [], "setup_registry_off": []}
            for _ in range(cfg.setup_rounds):
                for key, target in (("setup", process), ("setup_registry_off", unregistered)):
                    rounds[key].append(
                        run_setup(
                            target,
                            cfg,
                            seconds=cfg.setup_seconds,
                            concurrency=cfg.setup_concurrency,
                            watched=watched,
                        )
                    )
            for key, runs in rounds.items():
                results[key] = median_run(runs)
                results[f"{key}_rounds"] = [run["connections_per_second"] for run in runs]
        results["echo"] = run_echo(process, cfg, watched=watched)
        if not cfg.fresh_server_per_hold:
            for n in cfg.hold_sizes:
                say(f"{endpoint.kind}: {server.label}: hold {n}")
                results["hold"][str(n)] = run_hold(process, n, cfg, endpoint)
    if cfg.fresh_server_per_hold:
        for n in cfg.hold_sizes:
            say(f"{endpoint.kind}: {server.label}: hold {n} (fresh server)")
            with running(server.make(endpoint.url)) as process:
                warm_up(process, cfg, count=min(50, cfg.warmup_count))
                results["hold"][str(n)] = run_hold(process, n, cfg, endpoint)
    return results


def median_run(runs: list[dict]) -> dict:
    """The run with the median setup rate (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda run: run["connections_per_second"])
    return ordered[(len(ordered) - 1) // 2]


def scaled_settings(cfg: Config) -> dict:
    f = cfg.ping_scale
    ttl = max(4, round(TTL_DEFAULT / f))
    refresh = max(1, min(ttl // 4, round(REFRESH_DEFAULT / f)))
    return {
        "scale": f,
        "ping_interval_seconds": PING_INTERVAL / f,
        "duration_seconds": TTL_DEFAULT / f,  # one hour, compressed
        "CONNECTION_TTL_SECONDS": ttl,
        "TTL_REFRESH_SECONDS": refresh,
        "exact": ttl * f == TTL_DEFAULT and refresh * f == REFRESH_DEFAULT,
    }


def measure_writes(servers: list[Server], cfg: Config) -> dict:
    """Writes per connection-hour while clients ping every 25 s, on fake endpoints of their own."""
    scaled = scaled_settings(cfg)
    say(
        f"writes: {cfg.ping_connections} connections pinging every "
        f"{scaled['ping_interval_seconds']:.3f} s for {scaled['duration_seconds']:.0f} s "
        f"(one hour compressed {cfg.ping_scale}x), both servers at once"
    )
    env = {
        "CONNECTION_TTL_SECONDS": str(scaled["CONNECTION_TTL_SECONDS"]),
        "TTL_REFRESH_SECONDS": str(scaled["TTL_REFRESH_SECONDS"]),
    }
    results: dict = {"settings": scaled}
    with contextlib.ExitStack() as stack:
        endpoints = [Endpoint("fake", cfg.fake_latency_ms) for _ in servers]
        for endpoint in endpoints:
            stack.callback(endpoint.stop)
        in_parallel([endpoint.start for endpoint in endpoints])
        processes = [
            server.make(endpoint.url, **env)
            for server, endpoint in zip(servers, endpoints, strict=True)
        ]
        for process in processes:
            stack.callback(stop_server, process)
        in_parallel([lambda p=process: start_server(p) for process in processes])
        runs = list(zip(servers, endpoints, processes, strict=True))
        for _, endpoint, _ in runs:
            endpoint.reset_stats()
        loads = [
            Load(
                "ping",
                process.port,
                [
                    "--connections",
                    str(cfg.ping_connections),
                    "--interval",
                    str(scaled["ping_interval_seconds"]),
                    "--duration",
                    str(scaled["duration_seconds"]),
                    "--concurrency",
                    "50",
                ],
                deflate=cfg.deflate,
            )
            for _, _, process in runs
        ]
        for (server, endpoint, _), load in zip(runs, loads, strict=True):
            result = load.result(timeout=scaled["duration_seconds"] + 180)
            stats = wait_for_deletes(endpoint, result["connections"])
            total, per = write_count(stats)
            # Each connection pinged for one compressed hour from its own `connected`; its
            # open and close handshakes (slower on a busy machine) do not stretch the hour.
            hours = result["connections"] * scaled["duration_seconds"] * cfg.ping_scale / 3600
            result.update(
                stats=stats,
                writes=total,
                writes_by_operation=per,
                connection_hours=hours,
                writes_per_connection_hour=total / hours if hours else None,
            )
            results[server.key] = result
    return results


def wait_for_deletes(endpoint: Endpoint, connections: int, timeout: float = 20) -> dict:
    """The endpoint's stats once every closed connection's item was deleted (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = endpoint.stats()
        calls = stats.get("calls", {})
        deleted = calls.get("DeleteItem", 0) + calls.get("BatchWriteItem", 0)
        if deleted >= connections or time.monotonic() > deadline:
            time.sleep(0.5)  # and anything still in flight
            return endpoint.stats()
        time.sleep(0.2)


def measure_endpoint(kind: str, cfg: Config) -> dict:
    servers = [ours(cfg), reference(cfg)]
    endpoint = Endpoint(kind, cfg.fake_latency_ms)
    say(f"{kind}: starting the endpoint and creating table {TABLE}")
    endpoint.start()
    try:
        results: dict = {
            "endpoint": kind,
            "label": endpoint.label,
            "servers": {s.key: measure_server(s, endpoint, cfg) for s in servers},
        }
    finally:
        endpoint.stop()
    if kind == "fake":
        results["writes"] = measure_writes(servers, cfg)
    return results


# --- the table ------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def dig(data: dict, *path):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def render(result: dict, cfg: Config) -> str:
    ours_r, ref_r = result["servers"]["ours"], result["servers"]["reference"]
    rows: list[tuple[str, float | None, float | None]] = []

    def row(label: str, *path) -> None:
        rows.append((label, dig(ours_r, *path), dig(ref_r, *path)))

    c = cfg.setup_concurrency
    row(
        "time to connected, 1 client at a time p50 (ms)",
        "setup_unloaded",
        "time_to_connected",
        "p50_ms",
    )
    row(f"setup rate, {c} concurrent (conn/s, higher better)", "setup", "connections_per_second")
    row("  time to connected p50 (ms)", "setup", "time_to_connected", "p50_ms")
    row("  time to connected p99 (ms)", "setup", "time_to_connected", "p99_ms")
    row("  server CPU per connection (ms)", "setup", "server_cpu_ms_per_connection")
    row(
        "setup rate, registry off (conn/s)",
        "setup_registry_off",
        "connections_per_second",
    )
    rows.append(
        (
            "  registry on / off (setup rate)",
            _div(
                dig(ours_r, "setup", "connections_per_second"),
                dig(ours_r, "setup_registry_off", "connections_per_second"),
            ),
            _div(
                dig(ref_r, "setup", "connections_per_second"),
                dig(ref_r, "setup_registry_off", "connections_per_second"),
            ),
        )
    )
    n = cfg.echo_connections
    row(f"echo throughput, {n} connections (msg/s)", "echo", "messages_per_second")
    row("  round trip p50 (ms)", "echo", "round_trip", "p50_ms")
    row("  round trip p99 (ms)", "echo", "round_trip", "p99_ms")
    row("  server CPU per message (us)", "echo", "server_cpu_us_per_message")
    for size in cfg.hold_sizes:
        row(
            f"RSS per idle connection, N={size:,} (KiB)",
            "hold",
            str(size),
            "rss_per_connection_kib",
        )
        row(f"  registry items while N={size:,} open", "hold", str(size), "registry_items_holding")
        row("  registry items once they closed", "hold", str(size), "registry_items_after_close")
    writes = result.get("writes")
    if writes:
        rows.append(
            (
                "DynamoDB writes per connection-hour, ping 25 s",
                dig(writes, "ours", "writes_per_connection_hour"),
                dig(writes, "reference", "writes_per_connection_hour"),
            )
        )
    else:
        rows.append(("DynamoDB writes per connection-hour, ping 25 s", None, None))

    width = max(len(r[0]) for r in rows) + 2
    head_ours, head_ref = ours_r["label"], ref_r["label"]
    col = max(len(head_ours), len(head_ref), 12) + 2
    lines = [
        f"== {result['label']} ==",
        f"{'':<{width}}{head_ours:>{col}}{head_ref:>{col}}{'ours/ref':>10}",
    ]
    for label, a, b in rows:
        lines.append(f"{label:<{width}}{fmt(a):>{col}}{fmt(b):>{col}}{ratio(a, b):>10}")
    lines.extend(notes(result, cfg))
    return "\n".join(lines)


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def notes(result: dict, cfg: Config) -> list[str]:
    out = [""]
    ours_r, ref_r = result["servers"]["ours"], result["servers"]["reference"]
    for key, r in (("ours", ours_r), ("reference", ref_r)):
        failures = {
            phase: dig(r, phase, "failure_count")
            for phase in ("setup", "echo", "setup_registry_off")
            if dig(r, phase, "failure_count")
        }
        for size, hold in r.get("hold", {}).items():
            if hold.get("failure_count") or hold.get("lost_while_idle"):
                failures[f"hold {size}"] = hold.get("failure_count", 0) + hold.get(
                    "lost_while_idle", 0
                )
        if failures:
            out.append(f"! {key}: failed or lost connections: {failures}")
    if ours_r.get("registry_off_honoured") is False:
        out.append(
            "! ours ignores REGISTRY_ENABLED=false (a connection got an item): its 'registry "
            "off' row is with the registry on"
        )
    for key, r in (("ours", ours_r), ("reference", ref_r)):
        cores = {
            phase: dig(r, phase, "other_cpu_cores")
            for phase in ("setup_unloaded", "setup", "echo", "setup_registry_off")
        }
        busy = {phase: f"{v:.2f}" for phase, v in cores.items() if v is not None and v > 0.15}
        if busy:
            out.append(
                f"! {key}: other processes on this machine used CPU during measurement "
                f"(cores: {busy}): those figures are disturbed"
            )
    for phase in ("setup", "echo"):
        split = [
            f"{key} server {fmt(dig(r, phase, 'server_cpu_cores'))}, "
            f"load {fmt(dig(r, phase, 'client_cpu_cores'))}, "
            f"endpoint {fmt(dig(r, phase, 'endpoint_cpu_cores'))}"
            for key, r in (("ours", ours_r), ("reference", ref_r))
        ]
        out.append(f"- CPU in cores during {phase}: {'; '.join(split)} ({os.cpu_count()} cores)")
    out.append(
        f"- setup: {cfg.setup_concurrency} clients connect, await `connected`, close, for "
        f"{cfg.setup_seconds:g} s, in {cfg.setup_rounds} rounds alternating registry on and "
        "off (median round shown); time from TCP connect to `connected`. Echo: closed loop, "
        "one message in flight per connection. RSS: VmRSS while N idle connections are open "
        "minus before, / N"
    )
    for key, r in (("ours", ours_r), ("reference", ref_r)):
        on, off = r.get("setup_rounds"), r.get("setup_registry_off_rounds")
        if on and off:
            out.append(
                f"  setup rounds, {key}: registry on {', '.join(f'{x:.0f}' for x in on)}; "
                f"off {', '.join(f'{x:.0f}' for x in off)} conn/s"
            )
    writes = result.get("writes")
    if writes:
        s = writes["settings"]
        per_o = dig(writes, "ours", "writes_by_operation") or {}
        per_r = dig(writes, "reference", "writes_by_operation") or {}
        out.append(
            f"- writes: {cfg.ping_connections} connections per server, each open for one "
            f"hour: ping every {s['ping_interval_seconds']:.3f} s for "
            f"{s['duration_seconds']:g} s = one hour "
            f"at {s['scale']}x; ours with CONNECTION_TTL_SECONDS={s['CONNECTION_TTL_SECONDS']} "
            f"and TTL_REFRESH_SECONDS={s['TTL_REFRESH_SECONDS']} (3600 and 300 / {s['scale']})"
            + ("" if s["exact"] else " (rounded: not an exact scale)")
        )
        out.append(f"  measured, ours: {per_o}; reference: {per_r}")
        out.append(
            "  formula for a connection open one hour, pinging every 25 s: reference = 1 PutItem"
            " + 3600/25 = 144 UpdateItem + 1 DeleteItem = 146; ours = 1 PutItem + one "
            "UpdateItem each time less than half the TTL is left (every ~TTL/2 = 1800 s, so "
            "1 to 2 an hour; at most one per TTL_REFRESH_SECONDS) + 1 DeleteItem = 3 to 4, "
            "whatever the ping rate"
        )
    else:
        out.append(
            "- writes per connection-hour are counted on the fake endpoint only (its /stats); "
            "they are a property of the server, not of the endpoint"
        )
    return out


# --- main -----------------------------------------------------------------------------------


def fake_available() -> bool:
    return (ROOT / "bench" / "fake_dynamodb.py").exists()


def git_revision() -> str | None:
    """HEAD's short hash, with "+dirty" when tracked files differ from it (read-only git)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        revision = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{revision}+dirty" if revision and dirty else revision or None


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Config]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--endpoint",
        choices=["fake", "moto", "both"],
        help="DynamoDB endpoint(s) to run against (default: both; with --quick, fake)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: small N, short (< 1 min per endpoint)"
    )
    p.add_argument("--server-cmd", choices=["daphne", "uvicorn"], default="daphne")
    p.add_argument(
        "--uvicorn-ws",
        choices=[UVICORN_WS, "websockets-sansio", "websockets"],
        default=UVICORN_WS,
    )
    p.add_argument("--latency-ms", type=float, default=5.0, help="the fake endpoint's latency")
    p.add_argument("--setup-seconds", type=float)
    p.add_argument("--setup-concurrency", type=int)
    p.add_argument("--echo-connections", type=int)
    p.add_argument("--echo-seconds", type=float)
    p.add_argument("--hold", help="comma list of idle connection counts (default 1000,10000)")
    p.add_argument("--ping-connections", type=int)
    p.add_argument("--ping-scale", type=int, help="hour compression factor (default 30)")
    p.add_argument("--deflate", action="store_true", help="clients offer permessage-deflate")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = p.parse_args(argv)
    if args.endpoint is None:
        args.endpoint = "fake" if args.quick else "both"
    common = {
        "server_cmd": args.server_cmd,
        "uvicorn_ws": args.uvicorn_ws,
        "fake_latency_ms": args.latency_ms,
        "deflate": args.deflate,
    }
    cfg = Config.quick_run(**common) if args.quick else Config(**common)
    for name in (
        "setup_seconds",
        "setup_concurrency",
        "echo_connections",
        "echo_seconds",
        "ping_connections",
        "ping_scale",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    if args.hold:
        cfg.hold_sizes = [int(n) for n in args.hold.split(",") if n.strip()]
    return args, cfg


def main(argv: list[str] | None = None) -> None:
    args, cfg = parse_args(argv)
    limit = raise_nofile()
    too_many = [n for n in cfg.hold_sizes if n + 100 > limit]
    if too_many:
        raise SystemExit(f"open files are limited to {limit}: cannot hold {too_many}")
    kinds = ["fake", "moto"] if args.endpoint == "both" else [args.endpoint]
    if "fake" in kinds and not fake_available():
        if args.endpoint == "fake":
            raise SystemExit("bench/fake_dynamodb.py is not there yet")
        say("bench/fake_dynamodb.py is not there yet: moto only")
        kinds.remove("fake")
    started = time.monotonic()
    results = {
        "meta": {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "revision": git_revision(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "nofile_limit": limit,
            "config": asdict(cfg),
        },
        "endpoints": {},
    }
    tables = []
    for kind in kinds:
        result = measure_endpoint(kind, cfg)
        results["endpoints"][kind] = result
        tables.append(render(result, cfg))
    results["meta"]["seconds"] = time.monotonic() - started
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"{stamp}{'-quick' if cfg.quick else ''}.json"
        path.write_text(json.dumps(results, indent=2))
        say(f"raw results: {path.relative_to(ROOT)}")
    print("\n\n".join(tables))
    print(
        f"\n({results['meta']['seconds']:.0f} s, {os.cpu_count()} cores, revision "
        f"{results['meta']['revision']})"
    )


if __name__ == "__main__":
    main()
