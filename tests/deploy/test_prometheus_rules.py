"""deploy/prometheus/: the alert rules pass promtool's checks and unit tests, and name only
metrics and labels the server exposes."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.promql import exposed, problems

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "realtime.rules.yml"
RULE_TESTS = PROMETHEUS / "realtime.rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    # Debian's prometheus package, which .ci/run installs: a missing tool fails, never skips.
    assert shutil.which("promtool"), "promtool not found: apt-get install prometheus"
    return subprocess.run(
        ["promtool", *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests():
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_where_it_fires():
    tested = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tested
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in rules()}


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_rule_names_only_what_the_server_exposes(rule):
    assert problems(rule["expr"], exposed()) == []
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert {"summary", "description"} <= rule["annotations"].keys()


def test_a_renamed_metric_would_be_caught():
    available = exposed()
    assert problems("rate(realtime_connects_total[5m])", available) == []
    assert problems("rate(realtime_connect_total[5m])", available) == [
        "realtime_connect_total is not exposed"
    ]
    assert problems('sum by (tenant) (realtime_connections_open{reason="x"})', available) == [
        "realtime_connections_open has no label reason",
        "grouping by ['tenant'], which realtime_connections_open{reason=\"x\"} does not carry",
    ]
