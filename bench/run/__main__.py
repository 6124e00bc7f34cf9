"""The command line: `python -m bench.run`, its flags, the run and where its results go."""

import argparse
import json
import os
import platform
import subprocess
import time
from dataclasses import asdict
from datetime import UTC, datetime

from bench import run
from bench.load import raise_nofile
from bench.processes import ROOT, UVICORN_WS
from bench.run.comparison import measure_endpoint
from bench.run.config import Config
from bench.run.progress import say
from bench.run.report import render

RESULTS_DIR = ROOT / "bench" / "results"


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
    p = argparse.ArgumentParser(prog="python -m bench.run", description=run.__doc__.splitlines()[0])
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
