"""DynamoDBRegistry.create_table on moto, its calls recorded: creating, checking and upgrading
the table (realtime/registry/dynamodb/table.py). That a new table serves the registry is in
the contract suite (test_contract.py)."""

import pytest

import realtime.registry.dynamodb.table as table_module
from realtime.registry import RegistryError, RegistryUnavailable, TableReport
from tests.conftest import EXPECTED_INDEXES
from tests.records import conn
from tests.registry.conftest import TABLE
from tests.registry.store import client_error, ttl_description


def describe(registry) -> dict:
    return registry.client.describe_table(TableName=registry.table_name)["Table"]


def indexes(registry) -> dict:
    return {
        i["IndexName"]: i["KeySchema"]
        for i in describe(registry).get("GlobalSecondaryIndexes", [])
        if i["Projection"] == {"ProjectionType": "ALL"}
    }


def create_original_table(registry, *, ttl: bool = True, key_schema=None, indexes=()) -> None:
    """The table the original server's README created: connection_id only, TTL on ttl."""
    key_schema = key_schema or [{"AttributeName": "connection_id", "KeyType": "HASH"}]
    names = {k["AttributeName"] for k in key_schema}
    names |= {k["AttributeName"] for i in indexes for k in i["KeySchema"]}
    kwargs = {"GlobalSecondaryIndexes": list(indexes)} if indexes else {}
    registry.client.create_table(
        TableName=registry.table_name,
        KeySchema=key_schema,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in sorted(names)],
        BillingMode="PAY_PER_REQUEST",
        **kwargs,
    )
    if ttl:
        registry.client.update_time_to_live(
            TableName=registry.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
        )


def test_create_table_with_wait_returns_an_active_table(fresh):
    report = fresh.create_table(wait=True)

    assert report == TableReport(TABLE, created=True, status="ACTIVE", ttl_enabled_now=True)
    assert {i["IndexStatus"] for i in describe(fresh)["GlobalSecondaryIndexes"]} == {"ACTIVE"}


def test_create_table_is_idempotent(fresh):
    fresh.create_table()
    fresh.client.calls.clear()

    report = fresh.create_table()

    assert report == TableReport(TABLE, created=False, status="ACTIVE", ttl_enabled_now=False)
    assert sorted(set(fresh.client.operations())) == ["describe_table", "describe_time_to_live"]
    assert indexes(fresh) == EXPECTED_INDEXES


def test_create_table_enables_ttl_when_it_is_off(fresh):
    fresh.create_table()
    fresh.client.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": False, "AttributeName": "ttl"}
    )

    report = fresh.create_table()

    assert report == TableReport(TABLE, created=False, status="ACTIVE", ttl_enabled_now=True)
    assert ttl_description(fresh) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


def test_create_table_adds_the_indexes_to_the_original_servers_table(fresh):
    create_original_table(fresh)
    fresh.client.calls.clear()

    report = fresh.create_table()

    assert report == TableReport(
        TABLE,
        created=False,
        status="ACTIVE",
        ttl_enabled_now=False,
        indexes_created=["by_tenant", "by_instance"],
    )
    assert indexes(fresh) == EXPECTED_INDEXES
    updates = [kw["GlobalSecondaryIndexUpdates"] for kw in fresh.client.kwargs("update_table")]
    assert [[u["Create"]["IndexName"] for u in update] for update in updates] == [
        ["by_tenant"],
        ["by_instance"],
    ]  # one index per UpdateTable: DynamoDB builds them one at a time
    # The upgraded table serves the registry.
    fresh.register(conn("c-1"))
    assert fresh.for_tenant("acme", deployment_id="prod").connections == [conn("c-1")]
    assert list(fresh.for_instance("host-a-1-0a0b0c0d")) == [conn("c-1")]


def test_create_table_reports_the_status_after_adding_an_index(fresh):
    tenant_index = {
        "IndexName": "by_tenant",
        "KeySchema": EXPECTED_INDEXES["by_tenant"],
        "Projection": {"ProjectionType": "ALL"},
    }
    create_original_table(fresh, indexes=[tenant_index])

    def updating_once_changed(real, **kwargs):
        table = real(**kwargs)
        if "update_table" in fresh.client.operations():
            table["Table"]["TableStatus"] = "UPDATING"
        return table

    fresh.client.stubs["describe_table"] = updating_once_changed

    report = fresh.create_table()

    assert report.indexes_created == ["by_instance"]
    assert report.status == "UPDATING"  # not the ACTIVE read before the change


def test_create_table_waits_for_an_existing_table_that_is_not_active(fresh, monkeypatch):
    fresh.create_table()
    statuses = iter(["CREATING", "CREATING"])
    sleeps = []
    monkeypatch.setattr(table_module.time, "sleep", sleeps.append)

    def creating_at_first(real, **kwargs):
        table = real(**kwargs)
        table["Table"]["TableStatus"] = next(statuses, "ACTIVE")
        return table

    fresh.client.stubs["describe_table"] = creating_at_first

    report = fresh.create_table(wait=True)

    assert report.status == "ACTIVE"
    assert sleeps == [1]


def test_create_table_honours_wait_seconds_for_a_new_table(fresh, monkeypatch):
    def never_active(real, **kwargs):
        table = real(**kwargs)
        table["Table"]["TableStatus"] = "CREATING"
        return table

    def no_sleeping(seconds):
        raise AssertionError("waited past wait_seconds")

    monkeypatch.setattr(table_module.time, "sleep", no_sleeping)
    fresh.client.stubs["describe_table"] = lambda real, **kw: (
        never_active(real, **kw) if "create_table" in fresh.client.operations() else real(**kw)
    )

    with pytest.raises(RegistryUnavailable, match="not active after 0s"):
        fresh.create_table(wait=True, wait_seconds=0)


def test_create_table_accepts_a_table_created_meanwhile_by_another_process(fresh):
    fresh.create_table()
    first = []

    def missing_the_first_time(real, **kwargs):
        if not first:
            first.append(True)
            raise client_error("ResourceNotFoundException", "DescribeTable")
        return real(**kwargs)

    fresh.client.stubs["describe_table"] = missing_the_first_time
    fresh.client.calls.clear()

    report = fresh.create_table()

    assert "create_table" in fresh.client.operations()  # it lost the race ...
    assert report == TableReport(TABLE, created=False, status="ACTIVE", ttl_enabled_now=False)


@pytest.mark.parametrize(
    "key_schema",
    [
        [{"AttributeName": "pk", "KeyType": "HASH"}],
        [
            {"AttributeName": "connection_id", "KeyType": "HASH"},
            {"AttributeName": "connected_at", "KeyType": "RANGE"},
        ],
    ],
)
def test_create_table_refuses_a_table_with_another_key_schema(fresh, key_schema):
    create_original_table(fresh, ttl=False, key_schema=key_schema)
    fresh.client.calls.clear()

    with pytest.raises(RegistryError, match=f"table {TABLE} exists with key schema") as caught:
        fresh.create_table()

    assert type(caught.value) is RegistryError
    assert fresh.client.operations() == ["describe_table"]  # nothing changed
    assert ttl_description(fresh) == {"TimeToLiveStatus": "DISABLED"}


def test_create_table_refuses_ttl_on_another_attribute(fresh):
    create_original_table(fresh, ttl=False)
    fresh.client.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )

    with pytest.raises(RegistryError, match="TTL on attribute 'expires', expected 'ttl'"):
        fresh.create_table()
