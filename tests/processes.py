"""Real server processes for end-to-end tests: moto's DynamoDB server, daphne and uvicorn.

They live in bench/processes.py, which the benchmark shares: the tests may import the
benchmark, the benchmark never imports the tests (.importlinter).
"""

import subprocess
import sys

from bench.processes import (
    ROOT,
    UVICORN_WS,
    ServerProcess,
    base_env,
    daphne_server,
    free_port,
    moto_server,
    server_env,
    uvicorn_server,
)

__all__ = [
    "ROOT",
    "UVICORN_WS",
    "ServerProcess",
    "base_env",
    "daphne_server",
    "free_port",
    "manage",
    "moto_server",
    "server_env",
    "uvicorn_server",
]


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`python manage.py ARGS` in the repository with exactly `env`: its exit code and its
    output, as text."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
