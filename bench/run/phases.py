"""The phases measured on one running server: connection setup, echo and idle connections
held, each with the server's CPU time over its measured window."""

import json
import sys
import time

from bench.processes import ServerProcess
from bench.run.config import Config
from bench.run.endpoint import TABLE, Endpoint, item_count
from bench.run.load_process import QUERY, Load
from bench.run.procfs import Snapshot, rss_kib


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
