"""The HTTP side in production: `check --deploy` passes with the README's settings, a bad Host
is one warning line, and answers never show internal addresses."""

import logging
import os
import re
from pathlib import Path

from django.test import Client

from tests.processes import manage

ROOT = Path(__file__).resolve().parents[2]


def readme_production_settings() -> dict[str, str]:
    """The README's "Production settings" block, with its placeholders filled in."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"### Production settings.*?```bash\n(.*?)```", readme, re.S).group(1)
    settings = dict(line.split("=", 1) for line in block.strip().splitlines())
    settings["SECRET_KEY"] = "tests-only-Production-Secret-Key-0123456789-abcdefghij"
    settings["WS_TOKEN_SECRET"] = "tests-only-token-secret-0123456789abcdef"
    return settings


def test_check_deploy_passes_with_the_readmes_production_settings():
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AWS_"))},
        **readme_production_settings(),
        "ENV_FILE": os.devnull,
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_them_check_deploy_warns():
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "AWS_"))},
        "ENV_FILE": os.devnull,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DEBUG": "false",
        "SECRET_KEY": readme_production_settings()["SECRET_KEY"],
    }
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_a_bad_host_is_400_and_one_warning_line(caplog, settings):
    settings.ALLOWED_HOSTS = ["realtime.example.com"]
    caplog.set_level(logging.DEBUG)

    response = Client().get("/api/stats", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("WARNING", "http.host_refused host=evil.example.com path=/api/stats")
    ]
    assert all(r.exc_info is None for r in caplog.records)


def test_probes_answer_whatever_the_host(settings):
    settings.ALLOWED_HOSTS = ["realtime.example.com"]
    assert Client().get("/healthz", HTTP_HOST="10.0.3.7").status_code == 200
