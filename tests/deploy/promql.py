"""What a PromQL query asks of the server's metrics, checked against the server's exposition.

The alert rules (deploy/prometheus/) and the dashboard (deploy/grafana/) name metrics and
labels as strings: a metric renamed in realtime/metrics.py would leave them silently empty.
`problems` parses a query (promql-parser: a real PromQL parser, so a malformed dashboard
query fails too) and lists every metric it selects that /metrics does not expose, and every
label it matches or groups by that those metrics do not carry.
"""

from collections.abc import Iterator

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from realtime import metrics
from realtime.registry import RegistryUnavailable

__all__ = ["exposed", "problems"]

# Added by Prometheus to every scraped series, not by the server.
TARGET_LABELS = frozenset({"job", "instance"})
# Prometheus' own series about each target.
SCRAPE_SERIES = {"up": frozenset()}


def exposed() -> dict[str, frozenset[str]]:
    """Every series name of the server's /metrics -> the labels its samples carry.

    Families whose labels are made on first use get one sample first, so that their labels
    show (metrics live in this process's registry; tests of values compare before and after).
    """
    metrics.delivery_finished(action="send", outcome="delivered")
    with metrics.registry_call("put_item") as call:
        call.failed(RegistryUnavailable("counted for the exposition", reason="timeout"))
    body, _ = metrics.exposition()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(names) for name, names in labels.items()} | SCRAPE_SERIES


def _selectors(node) -> Iterator:
    """Every VectorSelector under `node`."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node
    elif isinstance(node, promql_parser.MatrixSelector):
        yield node.vector_selector
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from _selectors(node.lhs)
        yield from _selectors(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from _selectors(argument)
    elif isinstance(
        node,
        promql_parser.AggregateExpr
        | promql_parser.ParenExpr
        | promql_parser.UnaryExpr
        | promql_parser.SubqueryExpr,
    ):
        yield from _selectors(node.expr)


def _groupings(node) -> Iterator[tuple[list[str], object]]:
    """(labels, the expression they apply to) of every `by (...)`, `on (...)` and
    `ignoring (...)` under `node`."""
    if isinstance(node, promql_parser.AggregateExpr):
        if node.modifier is not None:
            yield list(node.modifier.labels), node.expr
        yield from _groupings(node.expr)
    elif isinstance(node, promql_parser.BinaryExpr):
        matching = node.modifier.matching if node.modifier is not None else None
        if matching is not None:
            yield list(matching.labels), node
        yield from _groupings(node.lhs)
        yield from _groupings(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from _groupings(argument)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        yield from _groupings(node.expr)


def problems(query: str, available: dict[str, frozenset[str]]) -> list[str]:
    """What in `query` the exposition does not have; empty when it all exists.

    Raises:
        ValueError: `query` is not PromQL.
    """
    tree = promql_parser.parse(query)
    found = []

    def labels_of(node) -> frozenset[str]:
        names = [s.name for s in _selectors(node)]
        return TARGET_LABELS.union(*(available.get(name, frozenset()) for name in names))

    for selector in _selectors(tree):
        if not selector.name:
            found.append(f"a selector without a metric name: {selector}")
        elif selector.name not in available:
            found.append(f"{selector.name} is not exposed")
        else:
            for matcher in selector.matchers.matchers:
                if matcher.name not in labels_of(selector):
                    found.append(f"{selector.name} has no label {matcher.name}")
    for names, scope in _groupings(tree):
        missing = set(names) - labels_of(scope)
        if missing:
            found.append(f"grouping by {sorted(missing)}, which {scope} does not carry")
    return found
