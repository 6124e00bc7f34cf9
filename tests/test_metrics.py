"""realtime.metrics: each recording function moves exactly its series; labels stay bounded.

Metrics live on prometheus_client's process-wide registry, so tests compare values before and
after (`Series`) instead of expecting zeros.
"""

import re
import socket
from pathlib import Path

import pytest
from botocore.stub import Stubber
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import realtime.registry
from realtime import metrics
from realtime.registry import RegistryUnavailable
from realtime.registry.dynamodb import DynamoDBRegistry, make_client
from tests.processes import free_port
from tests.records import conn

# Every label a realtime_* series may carry; none of them takes a client-chosen value.
BOUNDED_LABELS = {"outcome", "reason", "direction", "kind", "operation", "action", "le"}


def value(name: str, **labels: str) -> float:
    """A sample's current value; 0 for a series that does not exist (yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Series:
    """Values of some samples, taken now, to compare with later ones."""

    def __init__(self, *samples: tuple[str, dict]):
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def changes(self) -> list[float]:
        return [
            value(name, **labels) - before
            for (name, labels), before in zip(self.samples, self.before, strict=True)
        ]


def registry_at(port: int) -> DynamoDBRegistry:
    client = make_client(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="testing",
        secret_access_key="testing",
        connect_timeout=0.5,
        read_timeout=0.5,
        max_attempts=1,
    )
    return DynamoDBRegistry(client=client, table_name="tests_connections")


def calls(operation: str) -> tuple[str, dict]:
    return ("realtime_registry_call_seconds_count", {"operation": operation})


def errors(operation: str, reason: str) -> tuple[str, dict]:
    return ("realtime_registry_errors_total", {"operation": operation, "reason": reason})


def _all_errors() -> float:
    """Registry errors of every operation and reason."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "realtime_registry_errors"
        for sample in family.samples
        if sample.name == "realtime_registry_errors_total"
    )


# --- connections --------------------------------------------------------------------------

OPEN = ("realtime_connections_open", {})
ACCEPTED = ("realtime_connects_total", {"outcome": "accepted"})
REJECTED = ("realtime_connects_total", {"outcome": "rejected"})


def closed(reason: str) -> tuple[str, dict]:
    return ("realtime_disconnects_total", {"reason": reason})


def rejected(reason: str) -> tuple[str, dict]:
    return ("realtime_rejections_total", {"reason": reason})


def test_an_opened_connection_is_open_and_accepted_until_closed():
    series = Series(OPEN, ACCEPTED, closed("client_closed"))

    metrics.connection_opened()
    assert series.changes() == [1, 1, 0]

    metrics.connection_closed("client_closed")
    assert series.changes() == [0, 1, 1]


@pytest.mark.parametrize("reason", sorted(metrics.CLOSE_REASONS))
def test_each_close_reason_has_its_series(reason):
    series = Series(closed(reason), closed("other"))
    metrics.connection_opened()
    metrics.connection_closed(reason)
    assert series.changes() == [1, 0]


def test_an_unknown_close_reason_is_other():
    series = Series(closed("other"))
    metrics.connection_opened()
    metrics.connection_closed("tenant-acme-left")
    assert series.changes() == [1]
    assert value("realtime_disconnects_total", reason="tenant-acme-left") == 0


@pytest.mark.parametrize("reason", sorted(metrics.REJECTION_REASONS))
def test_each_rejection_reason_has_its_series(reason):
    series = Series(rejected(reason), REJECTED, rejected("other"), OPEN)
    metrics.connection_rejected(reason)
    assert series.changes() == [1, 1, 0, 0]


def test_an_unknown_rejection_reason_is_other():
    series = Series(rejected("other"), REJECTED)
    metrics.connection_rejected("why-not")
    assert series.changes() == [1, 1]
    assert REGISTRY.get_sample_value("realtime_rejections_total", {"reason": "why-not"}) is None


def test_every_reason_series_exists_before_its_first_occurrence():
    for reason in (*metrics.REJECTION_REASONS, "other"):
        assert (
            REGISTRY.get_sample_value("realtime_rejections_total", {"reason": reason}) is not None
        )
    for reason in (*metrics.CLOSE_REASONS, "other"):
        assert (
            REGISTRY.get_sample_value("realtime_disconnects_total", {"reason": reason}) is not None
        )


# --- frames, delivery, broadcast ----------------------------------------------------------


def frames(direction: str, kind: str) -> tuple[str, dict]:
    return ("realtime_messages_total", {"direction": direction, "kind": kind})


def test_frames_are_counted_by_direction_and_kind():
    series = Series(frames("in", "ping"), frames("out", "pong"), frames("out", "ping"))
    metrics.message_received("ping")
    metrics.message_received("ping")
    metrics.message_sent("pong")
    assert series.changes() == [2, 1, 0]


def test_an_unknown_frame_kind_is_other():
    # An echoed frame's own `type` is the client's choice: it must never become a label.
    series = Series(frames("in", "other"), frames("out", "other"))
    metrics.message_received("chat")
    metrics.message_sent("surprise")
    assert series.changes() == [1, 1]


def test_deliveries_are_counted_by_action_and_outcome():
    def delivery(action: str, outcome: str) -> tuple[str, dict]:
        return ("realtime_deliveries_total", {"action": action, "outcome": outcome})

    series = Series(
        delivery("send", "delivered"),
        delivery("disconnect", "gone"),
        delivery("send", "other"),
        delivery("other", "not_found"),
    )
    metrics.delivery_finished(action="send", outcome="delivered")
    metrics.delivery_finished(action="disconnect", outcome="gone")
    metrics.delivery_finished(action="send", outcome="exploded")
    metrics.delivery_finished(action="poke", outcome="not_found")
    assert series.changes() == [1, 1, 1, 1]


def test_broadcasts_count_themselves_and_their_targets():
    series = Series(
        ("realtime_broadcasts_total", {"outcome": "sent"}),
        ("realtime_broadcasts_total", {"outcome": "unavailable"}),
        ("realtime_broadcast_targets_total", {}),
    )
    metrics.broadcast_finished(3)
    metrics.broadcast_finished(0)
    metrics.broadcast_failed()
    assert series.changes() == [2, 1, 3]


# --- the registry's DynamoDB calls ----------------------------------------------------------


def test_registry_calls_are_timed_by_api_name(dynamodb):
    series = Series(calls("PutItem"), calls("GetItem"), calls("DeleteItem"))
    seconds = Series(("realtime_registry_call_seconds_sum", {"operation": "PutItem"}))

    dynamodb.register(conn("c-1"))
    dynamodb.get("c-1")
    dynamodb.get("c-2")
    dynamodb.deregister("c-1")

    assert series.changes() == [1, 2, 1]
    assert seconds.changes()[0] > 0


def test_a_failed_condition_is_an_answer_not_an_error(dynamodb):
    series = Series(calls("UpdateItem"))
    before = _all_errors()

    assert dynamodb.refresh("c-gone", 1) is False  # ConditionalCheckFailedException

    assert series.changes() == [1]
    assert _all_errors() == before


def test_batch_deletes_are_timed(dynamodb):
    series = Series(calls("BatchWriteItem"))
    assert dynamodb.deregister_many([f"c-{n}" for n in range(30)]) == []
    assert series.changes() == [2]  # 25 per batch


def test_an_unreachable_endpoint_is_timed_and_counted():
    registry = registry_at(free_port())
    series = Series(calls("PutItem"), errors("PutItem", "unreachable"))

    with pytest.raises(RegistryUnavailable):
        registry.register(conn("c-1"))

    assert series.changes() == [1, 1]


def test_an_endpoint_that_never_answers_counts_a_timeout():
    with socket.socket() as listener:  # accepts connections (backlog), never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        registry = registry_at(listener.getsockname()[1])
        series = Series(calls("GetItem"), errors("GetItem", "timeout"))
        slow = Series(
            ("realtime_registry_call_seconds_bucket", {"operation": "GetItem", "le": "0.25"})
        )

        with pytest.raises(RegistryUnavailable):
            registry.get("c-1")

    assert series.changes() == [1, 1]
    assert slow.changes() == [0]  # 0.5 s read timeout: observed above 0.25 s


def test_failed_batch_deletes_count_every_attempt(monkeypatch):
    monkeypatch.setattr("realtime.registry.dynamodb.batches.time.sleep", lambda seconds: None)
    registry = registry_at(free_port())
    series = Series(calls("BatchWriteItem"), errors("BatchWriteItem", "unreachable"))

    assert registry.deregister_many(["c-1", "c-2"], attempts=3) == ["c-1", "c-2"]

    assert series.changes() == [3, 3]


@pytest.fixture(scope="module")
def stubbed() -> DynamoDBRegistry:
    """A registry whose client is answered by a botocore Stubber (never the network)."""
    return registry_at(free_port())


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("ProvisionedThroughputExceededException", "throttled"),
        ("ThrottlingException", "throttled"),
        ("ResourceNotFoundException", "table_not_found"),
        ("AccessDeniedException", "access_denied"),
        ("ValidationException", "invalid_request"),
        ("InternalServerError", "server_error"),
        ("SomethingNewException", "other"),
    ],
)
def test_dynamodb_error_codes_are_grouped_into_bounded_reasons(stubbed, code, reason):
    registry = stubbed
    series = Series(errors("DeleteItem", reason))
    with Stubber(registry.client) as stub:
        stub.add_client_error("delete_item", service_error_code=code, http_status_code=400)
        with pytest.raises(RegistryUnavailable) as caught:
            registry.deregister("c-1")
    assert caught.value.reason == code
    assert series.changes() == [1]
    assert REGISTRY.get_sample_value(*errors("DeleteItem", code)) is None


def test_every_operation_the_registry_calls_has_its_api_name():
    package = Path(realtime.registry.__file__).parent
    source = "\n".join(f.read_text(encoding="utf-8") for f in package.rglob("*.py"))
    called = set(re.findall(r'(?:_call|registry_call)\(\s*"([a-z_]+)"', source))
    assert {"put_item", "batch_write_item", "describe_table"} <= called
    assert called <= set(metrics.REGISTRY_OPERATIONS)


def test_an_operation_outside_the_api_list_is_other():
    series = Series(calls("other"))
    with metrics.registry_call("restore_table_from_backup"):
        pass
    assert series.changes() == [1]


# --- what is exposed ------------------------------------------------------------------------


def test_exposition_parses_and_holds_only_bounded_labels(dynamodb):
    dynamodb.register(conn("c-1"))
    body, content_type = metrics.exposition()

    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {
        "realtime_connections_open",
        "realtime_connects",
        "realtime_rejections",
        "realtime_disconnects",
        "realtime_messages",
        "realtime_registry_call_seconds",
        "realtime_registry_errors",
        "realtime_deliveries",
        "realtime_broadcasts",
        "realtime_broadcast_targets",
        "process_resident_memory_bytes",  # prometheus_client's default collectors
    } <= set(families)
    assert families["realtime_registry_call_seconds"].type == "histogram"
    for name, family in families.items():
        if name.startswith("realtime_"):
            for sample in family.samples:
                assert set(sample.labels) <= BOUNDED_LABELS, sample
    assert not any(name.endswith("_created") for name in families)
