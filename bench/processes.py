"""Real server processes on loopback: moto's DynamoDB server, daphne and uvicorn.

The benchmark starts them, and so do the end-to-end tests (through tests/processes.py: the
tests may import the benchmark, never the other way round). Each binds 127.0.0.1 on a port the
OS picks (port 0) and reports it in its log, so runs never race each other for ports. Output is
captured for assertions and for failure messages.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_MOTO_READY = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
_DAPHNE_READY = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")
_UVICORN_READY = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class ServerProcess:
    """A child process whose merged output is collected line by line."""

    def __init__(self, args: list[str], *, env: dict[str, str], ready: re.Pattern, name: str):
        self.args = args
        self.env = env
        self.ready = ready
        self.name = name
        self.port: int | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "ServerProcess":
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise RuntimeError(f"{self.name} did not start in {timeout}s:\n{self.output}")
        return self

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.port is None:
                match = self.ready.search(line)
                if match:
                    self.port = int(match.group(1)) if match.groups() else 0
                    self._ready.set()
        self._ready.set()  # exited: stop waiting

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait()

    def kill(self) -> None:
        if self.running:
            self.process.kill()
        self.process.wait()

    def wait_for_output(self, pattern: str, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.output):
                return True
            time.sleep(0.05)
        return False


def free_port() -> int:
    """A loopback port nothing listens on now (for a server that must be told its port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**overrides: str) -> dict[str, str]:
    """The parent's environment without anything that could point a child at real AWS."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "DYNAMODB_", "DJANGO_")) and key != "REDIS_URL"
    }
    env.update(
        ENV_FILE=os.devnull,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def server_env(endpoint_url: str, table_name: str, **overrides: str) -> dict[str, str]:
    """Environment for a daphne serving the project against a local DynamoDB endpoint.

    DEBUG is on so that the server creates its table at start.
    """
    defaults = {
        "DEBUG": "true",
        "SECRET_KEY": "tests-secret-key-0123456789abcdefghijkl",
        "DYNAMODB_ENDPOINT_URL": endpoint_url,
        "DYNAMODB_TABLE_NAME": table_name,
        "DATABASE_URL": "sqlite://:memory:",
    }
    return base_env(**{**defaults, **overrides})


def moto_server(port: int = 0) -> ServerProcess:
    """moto's DynamoDB server, one request at a time like DynamoDB's atomic writes
    (bench/serial_moto.py)."""
    return ServerProcess(
        [sys.executable, "-m", "bench.serial_moto", "-H", "127.0.0.1", "-p", str(port)],
        env=base_env(),
        ready=_MOTO_READY,
        name="moto_server",
    )


# README's `--ws`: uvicorn's websockets-sansio protocol, leaner (realtime/uvicorn_protocol.py).
UVICORN_WS = "realtime.uvicorn_protocol:WebSocketProtocol"
# README's `--http`: uvicorn's h11 protocol with a deadline for a request's headers.
UVICORN_HTTP = "realtime.uvicorn_protocol:HttpProtocol"


def uvicorn_server(env: dict[str, str], *extra_args: str, ws: str = UVICORN_WS) -> ServerProcess:
    """uvicorn as README's "Choosing the ASGI server" runs it."""
    return ServerProcess(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ws",
            ws,
            "--http",
            UVICORN_HTTP,
            "--ws-per-message-deflate",
            "false",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            env.get("DRAIN_SECONDS", "20"),
            *extra_args,
        ],
        env=env,
        ready=_UVICORN_READY,
        name="uvicorn",
    )


def daphne_server(env: dict[str, str], *extra_args: str) -> ServerProcess:
    return ServerProcess(
        [
            sys.executable,
            "-m",
            "daphne",
            "-e",
            "tcp:port=0:interface=127.0.0.1",
            *extra_args,
            "project.asgi:application",
        ],
        env=env,
        ready=_DAPHNE_READY,
        name="daphne",
    )
