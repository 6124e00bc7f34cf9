"""The two compared servers (ours and the reference) and how one is started and stopped."""

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.processes import ServerProcess, base_env, daphne_server, server_env, uvicorn_server
from bench.run.config import Config
from bench.run.endpoint import TABLE

DAPHNE_READY = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")


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


def start_server(process: ServerProcess) -> ServerProcess:
    process.start(timeout=60)
    if not process.running or not process.port:
        raise RuntimeError(f"{process.name} did not start:\n{process.output[-3000:]}")
    return process


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
