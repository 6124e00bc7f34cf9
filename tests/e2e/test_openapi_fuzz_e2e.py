"""The API's OpenAPI document is exactly as strict as the server: schemathesis generates
requests from the document served by a real daphne and checks every answer.

Bounded in examples and time (a few minutes at most): the examples, coverage and fuzzing
phases, all checks that do not need links between operations.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT, manage, server_env

CONFIG = Path(__file__).with_name("schemathesis") / "schemathesis.toml"
TOKEN = "fuzz-api-token-0123456789abcdef"
SECRET = "fuzz-token-secret-0123456789abcdef012345"


@pytest.fixture
def server(start_server, moto_url, table_name, tmp_path):
    # A migrated database: requests that carry a session cookie look the session up.
    database = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
    env = server_env(moto_url, table_name, DATABASE_URL=database)
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return start_server(API_TOKENS=TOKEN, WS_TOKEN_SECRET=SECRET, DATABASE_URL=database)


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_request_the_document_and_the_server_disagree_on(server):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            f"http://127.0.0.1:{server.port}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--checks",
            "all",
            # These follow links from one operation's answer to another's request: the
            # document declares none.
            "--exclude-checks",
            "use_after_free,ensure_resource_availability,object_level_authorization",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "30",
            "--max-time",
            "90",
            "--workers",
            "1",
            "--seed",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout
