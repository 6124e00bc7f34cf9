"""The first hour: `bin/serve` in one terminal, the README's commands through `bin/manage` in
another, with nothing to guess (no endpoint, keys or secrets typed by hand).

Each terminal is a subprocess with an environment that carries none of the project's settings:
what the second one knows, it learns from the local settings file that bin/serve writes.
"""

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import wait_until
from tests.processes import ROOT, free_port

pytestmark = pytest.mark.e2e

_PROJECT_SETTINGS = re.compile(
    r"^(AWS_|DYNAMODB_|DJANGO_|WS_|LOCAL_ENV_FILE$|ENV_FILE$|REDIS_URL$|DEBUG$|SECRET_KEY$|"
    r"API_TOKENS$|DATABASE_URL$|HOST$|PORT$)"
)


def terminal(home: Path, **overrides: str) -> dict[str, str]:
    """A new terminal's environment: no project setting, no AWS profile; the developer's own
    .env is kept out (ENV_FILE), and the local settings file lives in `home` (LOCAL_ENV_FILE)
    rather than in the working tree."""
    env = {key: value for key, value in os.environ.items() if not _PROJECT_SETTINGS.match(key)}
    env.update(
        ENV_FILE=os.devnull,
        LOCAL_ENV_FILE=str(home / "dev.env"),
        DATABASE_URL=f"sqlite:///{home / 'db.sqlite3'}",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


class BinServe:
    """`bin/serve` running in its own terminal; its output collected line by line."""

    def __init__(self, home: Path, *args: str, **env: str):
        self.port = free_port()
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [str(ROOT / "bin" / "serve"), *args],
            env=terminal(home, HOST="127.0.0.1", PORT=str(self.port), **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()
        wait_until(
            lambda: "Listening on TCP address" in self.output or self.process.poll() is not None,
            90,
        )
        assert "Listening on TCP address" in self.output, self.output

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def printed(self, pattern: str) -> re.Match:
        match = re.search(pattern, self.output)
        assert match, self.output
        return match

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(40)


def bin_manage(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`bin/manage ARGS` typed in a second terminal."""
    return subprocess.run(
        [str(ROOT / "bin" / "manage"), *args],
        env=terminal(home, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("first_hour")


@pytest.fixture(scope="module")
def serving(home):
    server = BinServe(home, "--create-admin")
    yield server
    assert server.stop() == 0, server.output


QUERY = "tenant=acme&deployment_id=prod-1&connection_type=client"


def test_bin_manage_lists_the_connections_and_instances_of_the_server(home, serving):
    with connect(f"ws://127.0.0.1:{serving.port}/?{QUERY}") as ws:
        connection_id = json.loads(ws.recv(timeout=10))["connection_id"]

        listed = bin_manage(home, "list_connections", "--tenant", "acme", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [json.loads(line)["connection_id"] for line in listed.stdout.splitlines()] == [
            connection_id
        ]

        def held() -> list[int]:
            instances = bin_manage(home, "list_instances", "--json")
            assert instances.returncode == 0, instances.stderr
            return [json.loads(line)["connections"] for line in instances.stdout.splitlines()]

        # The instance's count is stored with its lease, at its next renewal.
        assert wait_until(lambda: held() == [1], 15, interval=1)


def test_table_commands_reach_the_embedded_endpoint(home, serving):
    created = bin_manage(home, "create_ws_table")
    assert created.returncode == 0, created.stderr
    assert "Table websocket_connections already exists" in created.stdout
    purged = bin_manage(home, "purge_connections", "--expired", "--dry-run")
    assert purged.returncode == 0, purged.stderr
    assert "expired: 0 items would be deleted" in purged.stdout


def test_the_printed_api_token_reads_the_api(serving):
    token = serving.printed(r'Authorization: Bearer (\S+)"').group(1)
    url = serving.printed(r'"(http://127\.0\.0\.1:\d+/api/connections\?tenant=acme)"').group(1)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert "connections" in json.load(response)


def admin_login(port: int, username: str, password: str) -> str:
    """Log in through the admin's login form; returns the page it lands on."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    login = f"http://127.0.0.1:{port}/admin/login/?next=/admin/"
    form = opener.open(login, timeout=10).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": csrf, "username": username, "password": password, "next": "/admin/"}
    ).encode()
    with opener.open(login, data=body, timeout=10) as response:
        return response.read().decode()


def test_the_admin_created_on_request_logs_in(serving):
    username, password = serving.printed(r"/admin/ as (\S+) / (\S+) \(created now").groups()
    assert "Log out" in admin_login(serving.port, username, password)


def test_a_superuser_made_with_bin_manage_logs_in(home, serving):
    created = bin_manage(
        home,
        "createsuperuser",
        "--noinput",
        "--username=ops",
        "--email=ops@example.com",
        DJANGO_SUPERUSER_PASSWORD="first-hour-password",
    )
    assert created.returncode == 0, created.stderr
    assert "Log out" in admin_login(serving.port, "ops", "first-hour-password")


def test_a_restart_keeps_the_secrets_and_starts_a_new_endpoint(tmp_path):
    first = BinServe(tmp_path)
    assert first.stop() == 0, first.output
    assert "no user yet: bin/manage createsuperuser, or bin/serve --create-admin" in first.output
    before = (tmp_path / "dev.env").read_text()
    # Client tokens required now: WS_TOKEN_SECRET comes from the first run's file.
    second = BinServe(tmp_path, WS_AUTH="signed")
    try:
        after = (tmp_path / "dev.env").read_text()
        issued = bin_manage(
            tmp_path,
            "issue_token",
            "--tenant=acme",
            "--deployment-id=prod-1",
            "--connection-type=client",
        )
        assert issued.returncode == 0, issued.stderr
        with connect(f"ws://127.0.0.1:{second.port}/?{QUERY}&token={issued.stdout.strip()}") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connected"
    finally:
        assert second.stop() == 0, second.output

    def values(text: str) -> dict[str, str]:
        return dict(re.findall(r"^([A-Z_]+)=(.*)$", text, re.M))

    old, new = values(before), values(after)
    for name in ("SECRET_KEY", "API_TOKENS", "WS_TOKEN_SECRET"):
        assert len(new[name]) >= 32 and new[name] == old[name], name
    # The first run's endpoint stopped with it: the second started its own.
    assert new["DYNAMODB_ENDPOINT_URL"] != old["DYNAMODB_ENDPOINT_URL"]
    assert f"DynamoDB at {new['DYNAMODB_ENDPOINT_URL']}" in second.output
    assert (tmp_path / "dev.env").stat().st_mode & 0o077 == 0  # it holds secrets


def test_bin_manage_before_bin_serve_says_what_is_missing(tmp_path):
    result = bin_manage(tmp_path, "list_connections", "--tenant", "acme")
    assert result.returncode != 0
    assert "dev.env does not exist yet (bin/serve writes it)" in result.stderr
