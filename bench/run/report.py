"""The table printed for one endpoint: ours next to the reference, their ratios, and notes on
what disturbed the figures and how they were taken."""

import os

from bench.run.config import Config


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
        lease = dig(writes, "ours", "lease_writes_per_instance_hour")
        if lease is not None:
            out.append(
                f"  ours also renews its instance lease: {lease:,.0f} writes per instance-hour "
                "(counted apart: a cost per server process, whatever its connections)"
            )
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
