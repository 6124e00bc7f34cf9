"""list_connections and purge_connections against moto's mocked DynamoDB."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from realtime.server.runtime import runtime
from tests.conftest import NOW
from tests.records import conn, seed


@pytest.fixture
def registry(aws, clock):
    registry = runtime().registry
    registry.clock = clock
    registry.create_table()
    return registry


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def stored_ids(registry) -> set[str]:
    return {
        i["connection_id"]["S"]
        for i in registry.client.scan(TableName=registry.table_name)["Items"]
    }


def test_list_by_tenant_prints_a_table_of_live_connections(registry):
    seed(
        registry, [conn("c1"), conn("c2", deployment_id="other"), conn("gone", expires_at=NOW - 1)]
    )
    lines = run("list_connections", "--tenant", "acme").splitlines()
    assert lines[0].split() == [
        "connection_id",
        "tenant",
        "deployment_id",
        "connection_type",
        "connected_at",
        "instance_id",
        "client_addr",
    ]
    assert sorted(line.split()[0] for line in lines[1:-1]) == ["c1", "c2"]
    assert lines[-1] == "2 connections"


def test_list_narrows_by_deployment_and_type_and_limits(registry):
    seed(registry, [conn(f"c{i}") for i in range(5)] + [conn("w", connection_type="worker")])
    out = run(
        "list_connections",
        "--tenant",
        "acme",
        "--deployment-id",
        "prod",
        "--connection-type",
        "worker",
    )
    assert out.splitlines()[-1] == "1 connection"
    assert (
        run("list_connections", "--tenant", "acme", "--limit", "3").splitlines()[-1]
        == "3 connections"
    )


def test_list_as_json_lines(registry):
    seed(registry, [conn("c1")])
    (line,) = run("list_connections", "--tenant", "acme", "--json").splitlines()
    record = json.loads(line)
    assert record["connection_id"] == "c1" and record["expires_at"].endswith("Z")


def test_list_by_instance(registry):
    seed(registry, [conn("mine", instance_id="host-a"), conn("theirs", instance_id="host-b")])
    lines = run("list_connections", "--instance", "host-a").splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["mine"]


def test_list_rejects_type_without_deployment(registry):
    with pytest.raises(CommandError, match="deployment_id"):
        run("list_connections", "--tenant", "acme", "--connection-type", "worker")


def test_purge_instance_deletes_all_its_items_including_expired(registry):
    dead = [conn(f"d{i}", instance_id="dead-1") for i in range(30)]
    seed(
        registry,
        [
            *dead,
            conn("old", instance_id="dead-1", expires_at=NOW - 5),
            conn("alive", instance_id="live-1"),
        ],
    )
    assert (
        run("purge_connections", "--instance", "dead-1")
        == "instance dead-1: deleted 31 of 31 items\n"
    )
    assert stored_ids(registry) == {"alive"}


def test_purge_expired_deletes_only_expired_items(registry):
    seed(registry, [conn("live"), conn("old", expires_at=NOW - 5)])
    assert run("purge_connections", "--expired") == "expired: deleted 1 of 1 items\n"
    assert stored_ids(registry) == {"live"}


def test_purge_dry_run_deletes_nothing(registry):
    seed(registry, [conn("old", expires_at=NOW - 5)])
    assert (
        run("purge_connections", "--expired", "--dry-run") == "expired: 1 items would be deleted\n"
    )
    assert stored_ids(registry) == {"old"}


def test_purge_needs_a_target(registry):
    with pytest.raises(CommandError, match="--instance ID and/or --expired"):
        run("purge_connections")


def test_purge_reports_items_it_could_not_delete(registry, monkeypatch):
    seed(registry, [conn("old", expires_at=NOW - 5)])
    monkeypatch.setattr(registry, "deregister_many", lambda ids, **kwargs: list(ids))
    with pytest.raises(CommandError, match="1 items could not be deleted"):
        run("purge_connections", "--expired")
