"""deploy/start.sh, the image's command, run as the image runs it: from a copy of what the
Dockerfile puts in the image (after .dockerignore), with the image's environment and a
production configuration. The server it starts answers the image's health check and the
Kubernetes probes, registers a client, and drains on SIGTERM within the grace period."""

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.deploy.dockerfile import arguments, final_stage, stage_image_tree
from tests.deploy.manifests import probe_paths, resources
from tests.e2e.conftest import item_ids, wait_until
from tests.processes import ServerProcess, base_env, free_port

pytestmark = pytest.mark.e2e

_LISTENING = re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)")


def image_env() -> dict[str, str]:
    """The ENV instructions of the image's final stage."""
    env: dict[str, str] = {}
    for instruction in arguments(final_stage(), "ENV"):
        env.update(pair.split("=", 1) for pair in instruction.split())
    return env


def health_check() -> list[str]:
    """The image's HEALTHCHECK command."""
    (check,) = arguments(final_stage(), "HEALTHCHECK")
    return json.loads(check.partition(" CMD ")[2])


@pytest.fixture
def started(tmp_path, moto_url, table_name, registry, redis_url):
    """start.sh from the image's tree, as the container would run it."""
    app = stage_image_tree(tmp_path / "image")
    registry.create_table(wait=True)  # DEBUG is off: the server does not create it
    env = base_env(
        **{
            key: value
            for key, value in image_env().items()
            if key not in ("PATH", "DATABASE_URL", "HOST", "PORT")
        },
        # The image's venv is first on its PATH; here, the test's.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HOST="127.0.0.1",
        PORT=str(free_port()),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DEBUG="false",
        SECRET_KEY="start-script-secret-key-0123456789abcdef",
        DYNAMODB_ENDPOINT_URL=moto_url,
        DYNAMODB_TABLE_NAME=table_name,
        REDIS_URL=redis_url,
        DRAIN_SECONDS=resources()["ConfigMap"]["data"]["DRAIN_SECONDS"],
    )
    server = ServerProcess(
        [str(app / "deploy" / "start.sh")], env=env, ready=_LISTENING, name="start.sh"
    ).start(timeout=60)
    yield server, env
    server.stop()


def get(port: int, path: str) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.status


def test_the_image_command_serves_probes_and_clients_and_drains(started, registry):
    server, env = started
    # start.sh handed its process over to daphne: the orchestrator's SIGTERM reaches it.
    cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
    assert b"daphne" in cmdline[1] or b"daphne" in cmdline[0], cmdline
    assert subprocess.run(health_check(), env=env, timeout=10).returncode == 0
    paths = probe_paths(resources())
    assert wait_until(lambda: get(server.port, paths["readinessProbe"]) == 200, 10)
    assert get(server.port, paths["livenessProbe"]) == 200

    query = "tenant=acme&deployment_id=prod-1&connection_type=client"
    with connect(f"ws://127.0.0.1:{server.port}/?{query}", open_timeout=10) as ws:
        connection_id = json.loads(ws.recv(timeout=10))["connection_id"]
        assert item_ids(registry) == {connection_id}

        grace = resources()["Deployment"]["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        server.signal(signal.SIGTERM)
        assert server.process.wait(grace) == 0, server.output
    assert item_ids(registry) == set()
    # The health check fails once the server is gone: it checks something.
    assert subprocess.run(health_check(), env=env, capture_output=True, timeout=10).returncode != 0
