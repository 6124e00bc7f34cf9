"""Ours against the reference on one endpoint: which phases run on which server, in what order."""

from bench.run.config import Config
from bench.run.endpoint import TABLE, Endpoint
from bench.run.phases import registry_written, run_echo, run_hold, run_setup, warm_up
from bench.run.progress import say
from bench.run.servers import Server, ours, reference, running
from bench.run.writes import measure_writes


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
