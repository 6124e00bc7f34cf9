"""ConnectionRegistry against moto's in-process DynamoDB (`mock_aws`), plus a dead endpoint."""

import asyncio
import base64
import json
import socket
import threading
import time

import pytest
from botocore import exceptions as botocore_exceptions
from botocore.exceptions import ClientError

import realtime.registry.dynamodb.batches as batches_module
import realtime.registry.dynamodb.table as table_module
from realtime.core.connection import isoformat
from realtime.registry import (
    InvalidCursor,
    RegistryError,
    RegistryUnavailable,
    TableReport,
)
from realtime.registry.dynamodb import DynamoDBRegistry, make_client
from tests.conftest import EXPECTED_INDEXES, NOW
from tests.records import TTL, conn, seed

TABLE = "tests_connections"


def raw_item(registry, connection_id: str) -> dict | None:
    response = registry.client.get_item(
        TableName=registry.table_name, Key={"connection_id": {"S": connection_id}}
    )
    return response.get("Item")


def item_count(registry) -> int:
    return registry.client.scan(TableName=registry.table_name, Select="COUNT")["Count"]


class Spy:
    """Wraps a boto3 client: records every call, and lets a test stub one operation.

    A stub is called as stub(real_method, **kwargs) and returns the response.
    """

    def __init__(self, client):
        self.client = client
        self.calls: list[tuple[str, dict, str]] = []  # (operation, kwargs, thread name)
        self.stubs: dict = {}

    def __getattr__(self, name):
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(**kwargs):
            self.calls.append((name, kwargs, threading.current_thread().name))
            stub = self.stubs.get(name)
            return stub(attr, **kwargs) if stub else attr(**kwargs)

        return call

    def operations(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def kwargs(self, operation: str) -> list[dict]:
        return [kwargs for name, kwargs, _ in self.calls if name == operation]


@pytest.fixture
def spy(dynamodb) -> Spy:
    dynamodb.client = Spy(dynamodb.client)
    return dynamodb.client


@pytest.fixture
def fresh(aws, mocked_client, clock):
    """A registry whose table does not exist yet, on a spied client."""
    return DynamoDBRegistry(client=Spy(mocked_client), table_name=TABLE, clock=clock)


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


def ids(connections) -> list[str]:
    return [c.connection_id for c in connections]


# --- writes -------------------------------------------------------------------


def test_register_writes_every_field_with_numeric_ttl_and_scope_key(dynamodb):
    dynamodb.register(conn("c-1"))

    assert raw_item(dynamodb, "c-1") == {
        "connection_id": {"S": "c-1"},
        "tenant": {"S": "acme"},
        "deployment_id": {"S": "prod"},
        "connection_type": {"S": "client"},
        "connected_at": {"S": isoformat(NOW)},
        "ttl": {"N": str(NOW + TTL)},
        "instance_id": {"S": "host-a-1-0a0b0c0d"},
        "channel_name": {"S": "specific.c-1"},
        "client_addr": {"S": "203.0.113.7:50123"},
        "scope_key": {"S": "prod#client#c-1"},
    }
    assert dynamodb.get("c-1") == conn("c-1")


def test_register_never_overwrites_an_existing_item(dynamodb):
    dynamodb.register(conn("c-1"))
    before = raw_item(dynamodb, "c-1")

    with pytest.raises(RegistryError) as caught:
        dynamodb.register(conn("c-1", tenant="intruder", expires_at=NOW + 99999))

    assert type(caught.value) is RegistryError  # taken id, not "DynamoDB unavailable"
    assert raw_item(dynamodb, "c-1") == before


def test_refresh_moves_ttl_of_an_existing_item_and_nothing_else(dynamodb):
    dynamodb.register(conn("c-1"))
    before = raw_item(dynamodb, "c-1")

    assert dynamodb.refresh("c-1", NOW + 5000) is True

    assert raw_item(dynamodb, "c-1") == {**before, "ttl": {"N": str(NOW + 5000)}}


def test_refresh_of_a_deregistered_or_missing_id_returns_false_and_creates_nothing(dynamodb):
    dynamodb.register(conn("c-1"))
    dynamodb.deregister("c-1")

    assert dynamodb.refresh("c-1", NOW + 5000) is False
    assert dynamodb.refresh("never-registered", NOW + 5000) is False

    assert raw_item(dynamodb, "c-1") is None
    assert item_count(dynamodb) == 0


def test_deregister_is_idempotent(dynamodb):
    dynamodb.register(conn("c-1"))
    dynamodb.register(conn("c-2"))

    dynamodb.deregister("c-1")
    dynamodb.deregister("c-1")
    dynamodb.deregister("never-registered")

    assert dynamodb.get("c-1") is None
    assert dynamodb.get("c-2") == conn("c-2")


def test_deregister_many_deletes_more_than_25_ids_in_batches(dynamodb, spy):
    seed(dynamodb, [conn(f"c-{i:02d}") for i in range(60)])
    keep = conn("keep")
    dynamodb.register(keep)
    # A repeated id would make BatchWriteItem reject the whole batch; it is sent once.
    requested = [f"c-{i:02d}" for i in range(60)] + ["c-00", "never-registered"]
    spy.calls.clear()

    assert dynamodb.deregister_many(requested) == []

    batches = [kw["RequestItems"][TABLE] for kw in spy.kwargs("batch_write_item")]
    assert [len(batch) for batch in batches] == [25, 25, 11]
    sent = [r["DeleteRequest"]["Key"]["connection_id"]["S"] for batch in batches for r in batch]
    assert sent == list(dict.fromkeys(requested))
    assert item_count(dynamodb) == 1
    assert dynamodb.get("keep") == keep


def test_deregister_many_retries_unprocessed_items(dynamodb, spy, monkeypatch):
    seed(dynamodb, [conn(f"c-{i:02d}") for i in range(30)])
    monkeypatch.setattr(batches_module.time, "sleep", lambda seconds: None)
    rounds = []

    def half_unprocessed_the_first_time(real, **kwargs):
        requests = kwargs["RequestItems"][TABLE]
        rounds.append(len(requests))
        if len(rounds) > 1:
            return real(**kwargs)
        real(RequestItems={TABLE: requests[::2]})
        return {"UnprocessedItems": {TABLE: requests[1::2]}}

    spy.stubs["batch_write_item"] = half_unprocessed_the_first_time

    assert dynamodb.deregister_many([f"c-{i:02d}" for i in range(30)]) == []
    assert rounds == [25, 12, 5]
    assert item_count(dynamodb) == 0


@pytest.mark.parametrize("failure", ["unprocessed", "error"])
def test_deregister_many_returns_the_ids_it_could_not_delete(dynamodb, spy, monkeypatch, failure):
    seed(dynamodb, [conn(f"c-{i:02d}") for i in range(30)])
    sleeps = []
    monkeypatch.setattr(batches_module.time, "sleep", sleeps.append)

    def keeps_failing(real, **kwargs):
        if failure == "error":
            raise client_error("ProvisionedThroughputExceededException", "BatchWriteItem")
        return {"UnprocessedItems": kwargs["RequestItems"]}

    spy.stubs["batch_write_item"] = keeps_failing
    spy.calls.clear()
    requested = [f"c-{i:02d}" for i in range(30)]

    assert dynamodb.deregister_many(requested, attempts=3) == requested
    assert len(spy.kwargs("batch_write_item")) == 2 * 3  # two batches, three attempts each
    # Backoff between attempts, none after the last one (it would only delay the caller).
    assert sleeps == [0.05, 0.1, 0.05, 0.1]
    assert item_count(dynamodb) == 30


# --- get ------------------------------------------------------------------------


def test_get_returns_none_for_a_missing_item(dynamodb):
    assert dynamodb.get("never-registered") is None


def test_get_returns_none_for_an_expired_item(dynamodb, clock):
    dynamodb.register(conn("expired", expires_at=NOW - 1))
    dynamodb.register(conn("last-second", expires_at=NOW))

    assert dynamodb.get("expired") is None
    assert dynamodb.get("last-second") == conn("last-second", expires_at=NOW)
    clock.advance(0.5)
    assert dynamodb.get("last-second") is None


# --- for_tenant -----------------------------------------------------------------

TENANT_DATA = [
    conn("a1"),
    conn("a2"),
    conn("a3", connection_type="client-web"),
    conn("a4", connection_type="worker"),
    conn("a5", deployment_id="prod-1"),
    conn("a6", deployment_id="prod-1"),
    conn("a7-expired", expires_at=NOW - 1),
    conn("a8-expired", deployment_id="prod-1", expires_at=NOW - 60),
    conn("b1", tenant="acme2"),
    conn("b2", tenant="acme2", deployment_id="prod-1"),
    conn("c1", tenant="acm"),
]


@pytest.mark.parametrize(
    "tenant, narrowing, expected",
    [
        ("acme", {}, ["a1", "a2", "a3", "a4", "a5", "a6"]),
        ("acme", {"deployment_id": "prod"}, ["a1", "a2", "a3", "a4"]),
        ("acme", {"deployment_id": "prod-1"}, ["a5", "a6"]),
        ("acme", {"deployment_id": "prod", "connection_type": "client"}, ["a1", "a2"]),
        ("acme", {"deployment_id": "prod", "connection_type": "client-web"}, ["a3"]),
        ("acme", {"deployment_id": "prod-1", "connection_type": "client"}, ["a5", "a6"]),
        ("acme", {"deployment_id": "pro"}, []),
        ("acme2", {}, ["b1", "b2"]),
        ("acm", {}, ["c1"]),
        ("nobody", {}, []),
    ],
)
def test_for_tenant_narrows_with_the_tenant_index_and_never_scans(
    dynamodb, spy, tenant, narrowing, expected
):
    seed(dynamodb, TENANT_DATA)
    spy.calls.clear()

    page = dynamodb.for_tenant(tenant, **narrowing)

    by_id = {c.connection_id: c for c in TENANT_DATA}
    assert page.connections == [by_id[i] for i in expected]  # in index (scope_key) order
    assert page.cursor is None
    assert spy.operations() == ["query"]
    (query,) = spy.kwargs("query")
    assert query["IndexName"] == "by_tenant"


def test_for_tenant_excludes_items_expired_by_the_clock(dynamodb, clock):
    seed(dynamodb, [conn("early", expires_at=NOW), conn("late", expires_at=NOW + 10)])

    assert ids(dynamodb.for_tenant("acme").connections) == ["early", "late"]
    # Same rule as get(): an item with ttl < now is gone, also for a fractional now.
    clock.advance(0.5)
    assert dynamodb.get("early") is None
    assert ids(dynamodb.for_tenant("acme").connections) == ["late"]
    clock.advance(10)
    assert dynamodb.for_tenant("acme").connections == []


def read_all_pages(registry, tenant, **query):
    pages, cursor = [], None
    while True:
        page = registry.for_tenant(tenant, cursor=cursor, **query)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


@pytest.mark.parametrize("expired_between", [0, 2])
def test_for_tenant_paginates_without_duplicates_or_gaps(dynamodb, spy, expired_between):
    # 250 live items; with `expired_between` expired items after each one, a Query whose Limit
    # is the page size returns about a third of a page once the filter has run.
    data = []
    for i in range(250):
        data.append(conn(f"live-{i:03d}"))
        data += [conn(f"live-{i:03d}-x{j}", expires_at=NOW - 1) for j in range(expired_between)]
    data.append(conn("other-deployment", deployment_id="prod-1"))
    seed(dynamodb, data)
    spy.calls.clear()

    pages = read_all_pages(dynamodb, "acme", deployment_id="prod", limit=100)

    assert [len(p.connections) for p in pages] == [100, 100, 50]
    assert [p.cursor is None for p in pages] == [False, False, True]
    assert [c.connection_id for p in pages for c in p.connections] == [
        f"live-{i:03d}" for i in range(250)
    ]
    queries = spy.kwargs("query")
    assert {q["IndexName"] for q in queries} == {"by_tenant"}
    assert "scan" not in spy.operations()
    if expired_between:
        assert len(queries) > 3  # pages were filled by reading on after the filter


def test_for_tenant_rejects_a_cursor_of_another_tenant(dynamodb):
    seed(dynamodb, [conn("a0"), conn("a1"), conn("b0", tenant="acme2"), conn("b1", tenant="acme2")])
    cursor = dynamodb.for_tenant("acme2", limit=1).cursor
    assert cursor is not None

    with pytest.raises(InvalidCursor):
        dynamodb.for_tenant("acme", cursor=cursor)


def test_for_tenant_rejects_a_cursor_of_another_deployment(dynamodb):
    # Real DynamoDB answers a start key outside the key condition with a ValidationException,
    # which would surface as "unavailable"; moto silently starts elsewhere. Neither is right.
    prod_1 = [conn(f"p{i}", deployment_id="prod-1") for i in range(3)]
    seed(dynamodb, [conn("a0"), conn("a1"), conn("a2"), *prod_1])
    cursor = dynamodb.for_tenant("acme", deployment_id="prod", limit=1).cursor
    assert cursor is not None

    with pytest.raises(InvalidCursor):
        dynamodb.for_tenant("acme", deployment_id="prod-1", cursor=cursor)
    with pytest.raises(InvalidCursor):
        dynamodb.for_tenant("acme", deployment_id="prod", connection_type="worker", cursor=cursor)
    # The same cursor stays valid for a wider query that contains it.
    wider = dynamodb.for_tenant("acme", cursor=cursor).connections
    assert ids(wider) == ["a1", "a2", "p0", "p1", "p2"]


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _key(**overrides):
    key = {
        "connection_id": {"S": "a1"},
        "tenant": {"S": "acme"},
        "scope_key": {"S": "prod#client#a1"},
    }
    return {**key, **overrides}


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        "é",
        _b64(_key())[:-6],  # truncated
        _b64([1, 2, 3]),
        _b64("acme"),
        _b64({k: v for k, v in _key().items() if k != "scope_key"}),
        _b64(_key(extra={"S": "x"})),
        _b64(_key(connection_id={"N": "1"})),
        _b64(_key(connection_id={"S": 5})),  # well-formed JSON, not a DynamoDB string
        _b64(_key(scope_key={"S": ["prod"]})),
        _b64(_key(tenant={"S": "acme2"})),
        base64.urlsafe_b64encode(b"\xff\xfe{}").decode(),
    ],
)
def test_for_tenant_rejects_a_tampered_cursor(dynamodb, spy, cursor):
    seed(dynamodb, [conn("a1"), conn("a2")])
    spy.calls.clear()

    with pytest.raises(InvalidCursor):
        dynamodb.for_tenant("acme", cursor=cursor)
    assert spy.calls == []  # rejected before DynamoDB is asked


def test_for_tenant_accepts_a_well_formed_cursor_of_its_query(dynamodb):
    # The control for the tampered-cursor cases: a key of the right shape is accepted.
    seed(dynamodb, [conn("a1"), conn("a2"), conn("a3")])
    assert ids(dynamodb.for_tenant("acme", cursor=_b64(_key())).connections) == ["a2", "a3"]


def test_for_tenant_wants_a_deployment_for_a_connection_type(dynamodb, spy):
    with pytest.raises(ValueError):
        dynamodb.for_tenant("acme", connection_type="client")
    assert spy.calls == []


# --- for_instance ---------------------------------------------------------------


def test_for_instance_returns_one_instance_across_pages(dynamodb, spy):
    mine = [conn(f"m-{i:03d}", instance_id="host-a") for i in range(110)]
    expired = [conn(f"m-x{i}", instance_id="host-a", expires_at=NOW - 1) for i in range(10)]
    others = [conn(f"o-{i:03d}", instance_id="host-ab") for i in range(30)]
    seed(dynamodb, mine + expired + others)

    def small_pages(real, **kwargs):
        return real(**kwargs, Limit=25)

    spy.stubs["query"] = small_pages
    spy.calls.clear()

    live = list(dynamodb.for_instance("host-a"))
    assert sorted(ids(live)) == sorted(ids(mine))
    assert len(live) == len(set(ids(live)))
    assert sorted(live, key=str) == sorted(mine, key=str)  # whole records, not just ids
    queries = spy.kwargs("query")
    assert len(queries) == 5  # 120 items, 25 a page
    assert {q["IndexName"] for q in queries} == {"by_instance"}
    assert "scan" not in spy.operations()

    everything = list(dynamodb.for_instance("host-a", include_expired=True))
    assert sorted(ids(everything)) == sorted(ids(mine + expired))


# --- create_table ---------------------------------------------------------------


def describe(registry) -> dict:
    return registry.client.describe_table(TableName=registry.table_name)["Table"]


def indexes(registry) -> dict:
    return {
        i["IndexName"]: i["KeySchema"]
        for i in describe(registry).get("GlobalSecondaryIndexes", [])
        if i["Projection"] == {"ProjectionType": "ALL"}
    }


def ttl_description(registry) -> dict:
    return registry.client.describe_time_to_live(TableName=registry.table_name)[
        "TimeToLiveDescription"
    ]


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


def test_create_table_creates_table_indexes_and_ttl(fresh):
    report = fresh.create_table()

    assert report == TableReport(TABLE, created=True, status="ACTIVE", ttl_enabled_now=True)
    table = describe(fresh)
    assert table["KeySchema"] == [{"AttributeName": "connection_id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert indexes(fresh) == EXPECTED_INDEXES
    assert ttl_description(fresh) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


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


# --- a dead DynamoDB fails fast, as RegistryUnavailable -------------------------


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dead_registry(port: int, **client_options):
    client = make_client(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="testing",
        secret_access_key="testing",
        connect_timeout=0.5,
        read_timeout=0.5,
        **client_options,
    )
    return DynamoDBRegistry(client=client, table_name=TABLE)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.register(conn("c-1")),
        lambda r: r.refresh("c-1", NOW),
        lambda r: r.deregister("c-1"),
        lambda r: r.get("c-1"),
        lambda r: r.for_tenant("acme"),
        lambda r: list(r.for_instance("host-a")),
        lambda r: r.create_table(),
    ],
    ids=["register", "refresh", "deregister", "get", "for_tenant", "for_instance", "create_table"],
)
def test_an_unreachable_endpoint_raises_registry_unavailable_fast(call):
    port = unused_port()
    registry = dead_registry(port)  # default retries: 2 attempts
    started = time.monotonic()

    with pytest.raises(RegistryUnavailable) as caught:
        call(registry)

    assert time.monotonic() - started < 3
    assert caught.value.reason == "unreachable"
    assert isinstance(caught.value.__cause__, botocore_exceptions.ConnectionError)
    assert registry.location == f"http://127.0.0.1:{port}"


def test_deregister_many_on_an_unreachable_endpoint_returns_every_id(monkeypatch):
    monkeypatch.setattr(batches_module.time, "sleep", lambda seconds: None)
    registry = dead_registry(unused_port(), max_attempts=1)

    assert registry.deregister_many(["c-1", "c-2"], attempts=2) == ["c-1", "c-2"]


def test_an_endpoint_that_never_answers_raises_registry_unavailable_fast():
    with socket.socket() as listener:  # accepts connections (backlog), never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        registry = dead_registry(listener.getsockname()[1], max_attempts=1)
        started = time.monotonic()

        with pytest.raises(RegistryUnavailable) as caught:
            registry.get("c-1")

    assert time.monotonic() - started < 3
    assert caught.value.reason == "timeout"


# --- async twins ----------------------------------------------------------------


def test_async_twins_run_on_the_registry_threads(dynamodb, spy):
    async def scenario():
        await dynamodb.aregister(conn("c-1"))
        await dynamodb.aregister(conn("c-2"))
        got = await dynamodb.aget("c-1")
        refreshed = await dynamodb.arefresh("c-1", NOW + 9000)
        missing = await dynamodb.arefresh("nope", NOW + 9000)
        await dynamodb.aderegister("c-2")
        leftover = await dynamodb.aderegister_many(["c-1", "c-3"])
        return got, refreshed, missing, leftover

    got, refreshed, missing, leftover = asyncio.run(scenario())

    threads = {thread for _, _, thread in spy.calls}
    assert len(spy.calls) == 7
    assert all(t.startswith("registry") for t in threads), threads
    assert got == conn("c-1")
    assert (refreshed, missing, leftover) == (True, False, [])
    assert item_count(dynamodb) == 0


def test_async_register_raises_registry_error_for_a_taken_id(dynamodb):
    dynamodb.register(conn("c-1"))

    with pytest.raises(RegistryError):
        asyncio.run(dynamodb.aregister(conn("c-1", tenant="other")))


# --- counts and expired items ---------------------------------------------------


def test_counts_per_tenant_deployment_and_type_leave_out_expired(dynamodb):
    seed(
        dynamodb,
        [
            conn("a1", tenant="acme", deployment_id="prod", connection_type="client"),
            conn("a2", tenant="acme", deployment_id="prod", connection_type="client"),
            conn("a3", tenant="acme", deployment_id="prod", connection_type="worker"),
            conn("a4", tenant="acme", deployment_id="prod-1", connection_type="client"),
            conn("b1", tenant="beta", deployment_id="prod", connection_type="client"),
            conn("x1", tenant="acme", deployment_id="prod", expires_at=NOW - 1),
        ],
    )
    acme = {"prod": {"client": 2, "worker": 1}, "prod-1": {"client": 1}}
    assert dynamodb.counts() == {"acme": acme, "beta": {"prod": {"client": 1}}}
    assert dynamodb.counts(tenant="acme") == {"acme": acme}
    assert dynamodb.counts(tenant="nobody") == {}


def test_counts_for_one_tenant_is_a_query_of_its_index(dynamodb, spy):
    dynamodb.counts(tenant="acme")
    assert spy.operations() == ["query"]
    assert spy.kwargs("query")[0]["IndexName"] == "by_tenant"


def test_expired_ids_lists_only_items_past_their_ttl(dynamodb, clock):
    seed(dynamodb, [conn("live"), conn("old", expires_at=NOW - 10), conn("edge", expires_at=NOW)])
    assert set(dynamodb.expired_ids()) == {"old"}
    clock.advance(1)
    assert set(dynamodb.expired_ids()) == {"old", "edge"}


def test_a_retried_registration_whose_first_attempt_landed_succeeds(dynamodb):
    """botocore retries a put that timed out on our side; if the first attempt landed, the
    retry's condition fails on our own item, which is success, not an id collision."""
    record = conn("c1")
    dynamodb.register(record)
    dynamodb.register(record)  # the same record again: ours
    with pytest.raises(RegistryError, match="exists"):
        dynamodb.register(conn("c1", tenant="other"))  # another record with the id


def test_a_retried_quota_registration_whose_first_attempt_landed_succeeds(dynamodb):
    dynamodb.tenant_limit = 5
    record = conn("c1")
    dynamodb.register(record)
    dynamodb.register(record)
    count = dynamodb.client.get_item(
        TableName=dynamodb.table_name, Key={"connection_id": {"S": "quota#acme"}}
    )["Item"]["open_connections"]["N"]
    assert count == "1"


# --- batches (coalesced registrations and deregistrations) -----------------------------


def test_register_batch_writes_every_item_in_one_call(dynamodb, spy):
    records = [conn(f"c{i}") for i in range(10)]
    assert dynamodb.register_batch(records) == [None] * 10
    assert spy.operations() == ["batch_write_item"]
    assert {c.connection_id for c in dynamodb.for_tenant("acme").connections} == {
        f"c{i}" for i in range(10)
    }


def test_register_batch_of_one_is_a_plain_put(dynamodb, spy):
    assert dynamodb.register_batch([conn("c1")]) == [None]
    assert spy.operations() == ["put_item"]


def test_register_batch_of_more_than_25_takes_several_calls(dynamodb, spy):
    assert dynamodb.register_batch([conn(f"c{i}") for i in range(30)]) == [None] * 30
    assert spy.operations() == ["batch_write_item", "batch_write_item"]
    assert item_count(dynamodb) == 30


def test_registrations_a_batch_leaves_unprocessed_fail_alone(dynamodb, monkeypatch):
    real = dynamodb.client.batch_write_item

    def leaves_b(RequestItems):
        requests = RequestItems[dynamodb.table_name]
        kept = [r for r in requests if r["PutRequest"]["Item"]["connection_id"]["S"] == "b"]
        if written := [r for r in requests if r not in kept]:
            real(RequestItems={dynamodb.table_name: written})
        return {"UnprocessedItems": {dynamodb.table_name: kept}}

    monkeypatch.setattr(dynamodb.client, "batch_write_item", leaves_b)
    monkeypatch.setattr("realtime.registry.dynamodb.batches.time.sleep", lambda seconds: None)
    outcomes = dynamodb.register_batch([conn("a"), conn("b"), conn("c")])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], RegistryUnavailable)
    assert outcomes[1].reason == "unprocessed"
    assert dynamodb.get("a") is not None and dynamodb.get("c") is not None
    assert dynamodb.get("b") is None


def test_deregister_batch_deletes_in_one_call(dynamodb, spy):
    seed(dynamodb, [conn(f"c{i}") for i in range(10)])
    spy.calls.clear()
    assert dynamodb.deregister_batch([f"c{i}" for i in range(10)]) == [None] * 10
    assert spy.operations() == ["batch_write_item"]
    assert item_count(dynamodb) == 0


def test_concurrent_async_registrations_are_coalesced(dynamodb, spy):
    async def scenario():
        await asyncio.gather(*(dynamodb.aregister(conn(f"c{i}")) for i in range(50)))
        await asyncio.gather(*(dynamodb.aderegister(f"c{i}") for i in range(50)))

    asyncio.run(scenario())
    assert item_count(dynamodb) == 0
    assert len(spy.calls) < 20  # instead of 100 single calls
