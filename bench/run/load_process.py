"""bench.load, the load generator, run as a child process and watched line by line."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from bench.processes import ROOT

QUERY = "tenant=bench&deployment_id=bench-1&connection_type=client"


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
