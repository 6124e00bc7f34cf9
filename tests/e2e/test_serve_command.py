"""`manage.py serve`, what `bin/serve` runs: a local DynamoDB endpoint, the table, daphne."""

import json
import re
import signal
import socket
import subprocess
import sys
import threading

from websockets.sync.client import connect

from tests.e2e.conftest import wait_until
from tests.processes import ROOT, base_env, free_port


def test_serve_starts_everything_on_host_and_port_and_stops_it():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve"],
        cwd=ROOT,
        env=base_env(
            DEBUG="true", HOST="127.0.0.1", PORT=str(port), DATABASE_URL="sqlite://:memory:"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        assert wait_until(lambda: any("Listening on TCP address" in line for line in lines), 60), (
            lines
        )
        with connect(
            f"ws://127.0.0.1:{port}/?tenant=acme&deployment_id=prod-1&connection_type=client",
            legacy=True,
        ) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connected"
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(30)
    assert returncode == 0, lines
    output = "".join(lines)
    assert "Table websocket_connections: created" in output
    endpoint = re.search(r"DynamoDB at http://127\.0\.0\.1:(\d+)", output)
    assert endpoint, output
    # The local endpoint it started is gone with it.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(endpoint.group(1)))) != 0
