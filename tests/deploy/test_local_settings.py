"""The local settings file that bin/serve writes: who reads it, and who never does."""

import json
import subprocess
import sys

from tests.processes import ROOT, base_env

SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'file': s.LOCAL_ENV_FILE and str(s.LOCAL_ENV_FILE), "
    "'names': sorted(s.LOCAL_ENV_NAMES), 'debug': s.DEBUG, 'endpoint': s.DYNAMODB_ENDPOINT_URL, "
    "'tokens': s.API_TOKENS}))"
)


def settings_seen(*, keep_env_file: bool = False, **env: str) -> dict:
    """The settings a process with this environment loads (ENV_FILE pinned to /dev/null unless
    `keep_env_file`: then the project's default files apply)."""
    environment = base_env(DJANGO_SETTINGS_MODULE="project.settings", **env)
    if keep_env_file:
        environment.pop("ENV_FILE")
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_never_looks_for_the_local_file():
    seen = settings_seen(keep_env_file=True, DEBUG="false", SECRET_KEY="x" * 50)
    assert seen["file"] is None
    assert seen["names"] == []


def test_development_looks_for_it_in_the_project():
    seen = settings_seen(keep_env_file=True, DEBUG="true")
    assert seen["file"] == str(ROOT / ".local" / "dev.env")


def test_a_pinned_configuration_leaves_it_out():
    # Tests and deployments pin ENV_FILE: what they set is all they get.
    assert settings_seen(DEBUG="true")["file"] is None


def test_a_named_file_is_read_below_the_environment(tmp_path):
    local = tmp_path / "dev.env"
    local.write_text(
        "DEBUG=true\nDYNAMODB_ENDPOINT_URL=http://127.0.0.1:4000\nAPI_TOKENS=from-file\n"
    )
    seen = settings_seen(LOCAL_ENV_FILE=str(local), API_TOKENS="from-environment")
    assert seen["file"] == str(local)
    # DEBUG from the file alone: a second terminal needs nothing but the file's name.
    assert seen["debug"] is True
    assert seen["endpoint"] == "http://127.0.0.1:4000"
    assert seen["tokens"] == ["from-environment"]
    assert seen["names"] == ["DEBUG", "DYNAMODB_ENDPOINT_URL"]


def test_the_production_secret_check_still_holds_with_a_local_file(tmp_path):
    local = tmp_path / "dev.env"
    local.write_text("DYNAMODB_ENDPOINT_URL=http://127.0.0.1:4000\n")
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env=base_env(
            DJANGO_SETTINGS_MODULE="project.settings",
            DEBUG="false",
            SECRET_KEY="",
            LOCAL_ENV_FILE=str(local),
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
