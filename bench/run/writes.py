"""DynamoDB writes per connection-hour: both servers at once, each on a fake endpoint of its own,
with clients pinging every 25 s through one hour compressed by --ping-scale."""

import contextlib
import threading
import time
from collections.abc import Callable

from bench.run.config import Config
from bench.run.endpoint import Endpoint, lease_writes_per_hour, write_count
from bench.run.load_process import Load
from bench.run.progress import say
from bench.run.servers import Server, start_server, stop_server

# The defaults the written-per-hour figure maps to.
TTL_DEFAULT, REFRESH_DEFAULT, PING_INTERVAL = 3600, 300, 25.0


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
            # The lease is renewed in real time, not in the compressed hour: per instance-hour.
            result["lease_writes_per_instance_hour"] = lease_writes_per_hour(stats)
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
