"""Settings read from the environment: what production refuses to start with."""

import re
import subprocess
import sys

import pytest

from tests.processes import ROOT, base_env

LOAD_SETTINGS = (
    "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
)


def load(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", LOAD_SETTINGS],
        cwd=ROOT,
        env=base_env(DJANGO_SETTINGS_MODULE="project.settings", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("secret", ["", "django-insecure-local-development-only", "short"])
def test_production_refuses_an_insecure_secret_key(secret):
    result = load(DEBUG="false", SECRET_KEY=secret)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_real_secret_key():
    result = load(DEBUG="false", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_development_runs_without_a_secret_key():
    result = load(DEBUG="true")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("ttl, refresh", [("3600", "901"), ("3600", "0"), ("3", "1")])
def test_refresh_interval_must_leave_room_before_expiry(ttl, refresh):
    result = load(DEBUG="true", CONNECTION_TTL_SECONDS=ttl, TTL_REFRESH_SECONDS=refresh)
    assert result.returncode != 0
    assert "TTL_REFRESH_SECONDS must be between 1 and CONNECTION_TTL_SECONDS / 4" in result.stderr


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=true\nDYNAMODB_TABLE_NAME=from_file\nPORT=9999\n")
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DYNAMODB_TABLE_NAME, settings.PORT)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base_env(
            DJANGO_SETTINGS_MODULE="project.settings", ENV_FILE=str(env_file), PORT="8000"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["from_file", "8000"]


def test_redis_socket_timeout_outlasts_the_layers_blocking_read():
    from channels_redis.core import RedisChannelLayer

    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0]['socket_timeout'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base_env(
            DJANGO_SETTINGS_MODULE="project.settings", DEBUG="true", REDIS_URL="redis://x"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) > RedisChannelLayer.brpop_timeout


def test_env_example_and_readme_list_every_variable_the_settings_read():
    settings_source = (ROOT / "project" / "settings.py").read_text()
    # ENV_FILE names the file itself: the file's header explains it.
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_source)) - {"ENV_FILE"}
    assert len(read) > 30  # the pattern still finds them
    example = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    readme = (ROOT / "README.md").read_text()
    assert sorted(read - example) == []
    assert sorted(name for name in read if f"`{name}`" not in readme) == []
