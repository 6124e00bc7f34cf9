"""deploy/grafana/realtime.json: a dashboard Grafana can import, whose every query parses and
names only metrics and labels the server exposes, and which shows every metric the README
lists."""

import json
import re
from pathlib import Path

import pytest

from tests.deploy.promql import exposed, problems

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "realtime.json").read_text())
# Grafana's variables, as Grafana would substitute them before sending a query.
VARIABLES = {"$__rate_interval": "1m", "$job": "realtime", "$instance": ".*"}


def panels() -> list[dict]:
    return [p for p in DASHBOARD["panels"] if p["type"] != "row"]


def queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def substituted(query: str) -> str:
    for name, value in VARIABLES.items():
        query = query.replace(name, value)
    assert "$" not in query, f"an unknown variable in {query}"
    return query


@pytest.mark.parametrize("query", queries())
def test_every_query_names_only_what_the_server_exposes(query):
    assert problems(substituted(query), exposed()) == []


def test_every_metric_the_readme_lists_is_on_the_dashboard():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `realtime_.*$", readme, re.M)  # the metrics table
    listed = {name for row in rows for name in re.findall(r"`(realtime_\w+)`", row)}
    assert len(listed) > 10  # the pattern still finds the table
    shown = " ".join(queries())
    # A histogram is shown through its _bucket and _count series.
    assert (
        sorted(name for name in listed if not re.search(rf"\b{name}(_bucket|_count)?\b", shown))
        == []
    )


def test_the_dashboard_imports_anywhere():
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    # Any Prometheus data source, chosen on import; no uid of someone else's Grafana.
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and panel["description"]
        for target in panel["targets"]:
            assert 'job="$job"' in target["expr"]
