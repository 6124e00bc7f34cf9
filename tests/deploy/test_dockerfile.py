"""deploy/Dockerfile: what the image must be, read from the file; hadolint checks it in CI and
tests/e2e/test_start_script_e2e.py runs what it starts."""

import json
import os
import re

from tests.deploy.dockerfile import (
    arguments,
    dockerignore_patterns,
    final_stage,
    ignored,
    stages,
)
from tests.processes import ROOT


def test_every_stage_builds_on_the_base_pinned_by_tag_and_digest():
    (argument,) = arguments(stages()[0], "ARG")
    name, _, image = argument.partition("=")
    assert re.fullmatch(r"python:3\.12\.\d+-slim(-\w+)?@sha256:[0-9a-f]{64}", image), image
    froms = [stage[0].arguments for stage in stages()[1:]]
    assert len(froms) >= 2  # the build stage's tools stay out of the image
    assert all(line.split()[0] == f"${{{name}}}" for line in froms)


def test_the_server_runs_unprivileged_and_stops_on_sigterm():
    stage = final_stage()
    (user,) = arguments(stage, "USER")
    assert all(part.isdigit() and int(part) > 0 for part in user.split(":"))
    assert arguments(stage, "STOPSIGNAL") == ["SIGTERM"]


def test_the_command_is_the_start_script_in_exec_form():
    (command,) = arguments(final_stage(), "CMD")
    (workdir,) = arguments(final_stage(), "WORKDIR")
    assert json.loads(command) == [f"{workdir}/deploy/start.sh"]
    script = ROOT / "deploy" / "start.sh"
    assert os.access(script, os.X_OK)
    # It ends by handing the process over to daphne, so that SIGTERM reaches the server.
    last = script.read_text().strip().splitlines()[-1]
    assert last.startswith("exec daphne ") and '"${HOST:-0.0.0.0}"' in last and "PORT" in last


def test_the_health_check_asks_healthz_in_exec_form():
    (check,) = arguments(final_stage(), "HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options
    assert "/healthz" in " ".join(json.loads(command))


def test_the_build_context_leaves_secrets_and_history_out():
    patterns = dockerignore_patterns()
    for path in [".env", ".local/dev.env", ".venv/bin/python", ".git/HEAD", "db.sqlite3"]:
        assert ignored(path, patterns), path
    for path in ["manage.py", "project/settings.py", "realtime/core/handshake.py"]:
        assert not ignored(path, patterns), path
    assert ignored("realtime/core/__pycache__/handshake.cpython-312.pyc", patterns)


def test_what_the_stages_copy_is_in_the_build_context():
    patterns = dockerignore_patterns()
    for stage in stages()[1:]:
        for copy in arguments(stage, "COPY"):
            words = [word for word in copy.split() if not word.startswith("--")]
            if "--from=" not in copy:
                assert [s for s in words[:-1] if ignored(s.rstrip("/"), patterns)] == []
