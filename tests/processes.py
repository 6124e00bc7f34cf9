"""Real server processes for end-to-end tests: moto's DynamoDB server, daphne and uvicorn.

They live in bench/processes.py, which the benchmark shares: the tests may import the
benchmark, the benchmark never imports the tests (.importlinter).
"""

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
    "moto_server",
    "server_env",
    "uvicorn_server",
]
