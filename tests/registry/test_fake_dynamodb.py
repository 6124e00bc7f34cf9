"""bench/fake_dynamodb.py as a real process, driven through the real ConnectionRegistry.

The registry must behave against the fake exactly as it does against moto (tests/test_registry.py,
tests/test_quota.py): benchmarks that use the fake are only worth something if it does.
"""

import itertools
import json
import re
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from botocore.exceptions import ClientError

from realtime.registry import (
    InvalidCursor,
    QuotaExceeded,
    RegistryError,
    TableReport,
)
from realtime.registry.dynamodb import DynamoDBRegistry, make_client
from tests.conftest import EXPECTED_INDEXES, NOW, FakeClock
from tests.processes import ServerProcess, base_env
from tests.records import TTL, conn, seed

pytestmark = pytest.mark.e2e

_READY = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
_tables = itertools.count()
LATENCY_MS = 2
SLOW_MS = 100


def fake_process(latency_ms: float) -> ServerProcess:
    return ServerProcess(
        [sys.executable, "-m", "bench.fake_dynamodb", "--latency-ms", str(latency_ms)],
        env=base_env(),
        ready=_READY,
        name="fake_dynamodb",
    )


@pytest.fixture(scope="module")
def fake():
    server = fake_process(LATENCY_MS).start()
    yield server
    assert server.stop() == 0, server.output


@pytest.fixture(scope="module")
def client(fake):
    return make_client(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{fake.port}",
        access_key_id="testing",
        secret_access_key="testing",
        max_connections=50,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table_name() -> str:
    return f"fake_{next(_tables)}"


@pytest.fixture
def registry(client, table_name, clock) -> DynamoDBRegistry:
    registry = DynamoDBRegistry(client=client, table_name=table_name, clock=clock)
    registry.create_table()
    return registry


@pytest.fixture
def quota(registry) -> DynamoDBRegistry:
    registry.tenant_limit = 2
    return registry


def http(port: int, method: str, path: str) -> dict:
    with urlopen(Request(f"http://127.0.0.1:{port}{path}", method=method), timeout=10) as r:
        return json.loads(r.read())


def raw_item(registry, connection_id: str) -> dict | None:
    return registry.client.get_item(
        TableName=registry.table_name, Key={"connection_id": {"S": connection_id}}
    ).get("Item")


def item_count(registry) -> int:
    return registry.client.scan(TableName=registry.table_name, Select="COUNT")["Count"]


def ids(connections) -> list[str]:
    return [c.connection_id for c in connections]


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


# --- the process ----------------------------------------------------------------


def test_announces_itself_in_one_line_like_moto(fake):
    assert fake.lines == [f"Running on http://127.0.0.1:{fake.port}"]


def test_sigterm_stops_it_promptly_despite_open_keep_alive_connections():
    server = fake_process(0).start()
    idle = socket.create_connection(("127.0.0.1", server.port))
    idle.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200 OK")  # answered, left open
    started = time.monotonic()

    assert server.stop(timeout=10) == 0
    assert time.monotonic() - started < 5
    idle.close()


# --- the table ------------------------------------------------------------------


def test_create_table_creates_indexes_and_ttl_and_is_idempotent(client, table_name):
    registry = DynamoDBRegistry(client=client, table_name=table_name)
    assert registry.describe_table() is None

    first = registry.create_table()
    again = registry.create_table(wait=True)

    assert first == TableReport(table_name, created=True, status="ACTIVE", ttl_enabled_now=True)
    assert again == TableReport(table_name, created=False, status="ACTIVE", ttl_enabled_now=False)
    table = registry.describe_table()
    assert table["KeySchema"] == [{"AttributeName": "connection_id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {
        i["IndexName"]: i["KeySchema"]
        for i in table["GlobalSecondaryIndexes"]
        if i["Projection"] == {"ProjectionType": "ALL"} and i["IndexStatus"] == "ACTIVE"
    } == EXPECTED_INDEXES
    assert client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "ttl",
    }


def test_create_table_adds_the_indexes_to_a_table_without_them(client, table_name, clock):
    client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "connection_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connection_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    registry = DynamoDBRegistry(client=client, table_name=table_name, clock=clock)
    registry.register(conn("before"))  # indexed when the index is created

    report = registry.create_table()

    assert report.indexes_created == ["by_tenant", "by_instance"]
    registry.register(conn("after"))
    assert ids(registry.for_tenant("acme").connections) == ["after", "before"]
    assert sorted(ids(registry.for_instance("host-a-1-0a0b0c0d"))) == ["after", "before"]


# --- writes and reads -------------------------------------------------------------


def test_register_writes_the_item_in_dynamodb_wire_format(registry):
    registry.register(conn("c-1"))

    assert raw_item(registry, "c-1") == {
        "connection_id": {"S": "c-1"},
        "tenant": {"S": "acme"},
        "deployment_id": {"S": "prod"},
        "connection_type": {"S": "client"},
        "connected_at": {"S": conn("c-1").connected_at},
        "ttl": {"N": str(NOW + TTL)},
        "instance_id": {"S": "host-a-1-0a0b0c0d"},
        "channel_name": {"S": "specific.c-1"},
        "client_addr": {"S": "203.0.113.7:50123"},
        "scope_key": {"S": "prod#client#c-1"},
    }
    assert registry.get("c-1") == conn("c-1")
    assert registry.get("never-registered") is None


def test_a_registration_that_collides_raises_registry_error_and_changes_nothing(registry):
    registry.register(conn("c-1"))
    before = raw_item(registry, "c-1")

    with pytest.raises(RegistryError) as caught:
        registry.register(conn("c-1", tenant="intruder", expires_at=NOW + 99999))

    assert type(caught.value) is RegistryError  # a taken id, not "unavailable"
    assert raw_item(registry, "c-1") == before


def test_refresh_moves_the_ttl_and_never_recreates_an_item(registry):
    registry.register(conn("c-1"))
    before = raw_item(registry, "c-1")

    assert registry.refresh("c-1", NOW + 5000) is True
    assert raw_item(registry, "c-1") == {**before, "ttl": {"N": str(NOW + 5000)}}

    registry.deregister("c-1")
    assert registry.refresh("c-1", NOW + 6000) is False
    assert registry.refresh("never-registered", NOW + 6000) is False
    assert item_count(registry) == 0


def test_deregister_is_idempotent(registry):
    registry.register(conn("c-1"))
    registry.register(conn("c-2"))

    registry.deregister("c-1")
    registry.deregister("c-1")
    registry.deregister("never-registered")

    assert registry.get("c-1") is None
    assert registry.get("c-2") == conn("c-2")


def test_deregister_many_deletes_in_batches_of_25(registry):
    seed(registry, [conn(f"c-{i:02d}") for i in range(60)])
    registry.register(conn("keep"))

    requested = [f"c-{i:02d}" for i in range(60)] + ["c-00", "never-registered"]
    assert registry.deregister_many(requested) == []

    assert item_count(registry) == 1
    assert registry.get("keep") == conn("keep")


def test_get_hides_expired_items(registry, clock):
    registry.register(conn("expired", expires_at=NOW - 1))
    registry.register(conn("last-second", expires_at=NOW))

    assert registry.get("expired") is None
    assert registry.get("last-second") == conn("last-second", expires_at=NOW)
    clock.advance(0.5)
    assert registry.get("last-second") is None


# --- queries --------------------------------------------------------------------

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
        ("acme", {"deployment_id": "pro"}, []),
        ("acme2", {}, ["b1", "b2"]),
        ("acm", {}, ["c1"]),
        ("nobody", {}, []),
    ],
)
def test_for_tenant_narrows_by_deployment_and_type(registry, tenant, narrowing, expected):
    seed(registry, TENANT_DATA)

    page = registry.for_tenant(tenant, **narrowing)

    by_id = {c.connection_id: c for c in TENANT_DATA}
    assert page.connections == [by_id[i] for i in expected]  # scope_key order
    assert page.cursor is None


@pytest.mark.parametrize("expired_between", [0, 2])
def test_for_tenant_paginates_with_cursors_without_duplicates_or_gaps(registry, expired_between):
    data = []
    for i in range(250):
        data.append(conn(f"live-{i:03d}"))
        data += [conn(f"live-{i:03d}-x{j}", expires_at=NOW - 1) for j in range(expired_between)]
    data.append(conn("other-deployment", deployment_id="prod-1"))
    seed(registry, data)

    pages, cursor = [], None
    while len(pages) < 10:
        page = registry.for_tenant("acme", deployment_id="prod", limit=100, cursor=cursor)
        pages.append(page)
        cursor = page.cursor
        if cursor is None:
            break

    assert [len(p.connections) for p in pages] == [100, 100, 50]
    assert [c.connection_id for p in pages for c in p.connections] == [
        f"live-{i:03d}" for i in range(250)
    ]
    with pytest.raises(InvalidCursor):
        registry.for_tenant("acme2", cursor=pages[0].cursor)


def test_a_start_key_outside_the_key_condition_is_refused_like_dynamodb(registry):
    seed(registry, [conn("a1"), conn("p1", deployment_id="prod-1")])
    start = {
        "connection_id": {"S": "a1"},
        "tenant": {"S": "acme"},
        "scope_key": {"S": "prod#client#a1"},
    }
    kwargs = {
        "TableName": registry.table_name,
        "IndexName": "by_tenant",
        "KeyConditionExpression": "tenant = :t AND begins_with(scope_key, :p)",
        "ExpressionAttributeValues": {":t": {"S": "acme"}, ":p": {"S": "prod-1#"}},
    }
    with pytest.raises(ClientError) as caught:
        registry.client.query(**kwargs, ExclusiveStartKey=start)
    assert error_code(caught.value) == "ValidationException"
    assert "outside query boundaries" in str(caught.value)

    kwargs["ExpressionAttributeValues"][":p"] = {"S": "prod#"}
    assert registry.client.query(**kwargs, ExclusiveStartKey=start)["Count"] == 0


def test_a_query_that_stops_at_its_limit_returns_a_last_evaluated_key_like_dynamodb(registry):
    # DynamoDB names the last item read whenever Limit stopped it, even if it was the last one.
    seed(registry, [conn("a1"), conn("a2")])
    kwargs = {
        "TableName": registry.table_name,
        "IndexName": "by_instance",
        "KeyConditionExpression": "instance_id = :i",
        "ExpressionAttributeValues": {":i": {"S": "host-a-1-0a0b0c0d"}},
        "Limit": 2,
    }
    first = registry.client.query(**kwargs)
    assert [i["connection_id"]["S"] for i in first["Items"]] == ["a1", "a2"]
    assert first["LastEvaluatedKey"] == {
        "connection_id": {"S": "a2"},
        "instance_id": {"S": "host-a-1-0a0b0c0d"},
    }
    rest = registry.client.query(**kwargs, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert (rest["Items"], rest["Count"], "LastEvaluatedKey" in rest) == ([], 0, False)


def test_for_instance_returns_one_instance_across_pages(registry, monkeypatch):
    mine = [conn(f"m-{i:03d}", instance_id="host-a") for i in range(110)]
    expired = [conn(f"m-x{i}", instance_id="host-a", expires_at=NOW - 1) for i in range(10)]
    others = [conn(f"o-{i:03d}", instance_id="host-ab") for i in range(30)]
    seed(registry, mine + expired + others)
    queries = []
    real_query = registry.client.query

    def small_pages(**kwargs):
        queries.append(kwargs)
        return real_query(**kwargs, Limit=25)

    monkeypatch.setattr(registry.client, "query", small_pages)

    live = list(registry.for_instance("host-a"))

    assert sorted(live, key=str) == sorted(mine, key=str)
    assert len(queries) == 5  # 120 items, 25 a page
    everything = list(registry.for_instance("host-a", include_expired=True))
    assert sorted(ids(everything)) == sorted(ids(mine + expired))


def test_counts_per_tenant_and_for_all_tenants_leave_out_expired(registry):
    seed(
        registry,
        [
            conn("a1"),
            conn("a2"),
            conn("a3", connection_type="worker"),
            conn("a4", deployment_id="prod-1"),
            conn("b1", tenant="beta"),
            conn("x1", expires_at=NOW - 1),
        ],
    )
    acme = {"prod": {"client": 2, "worker": 1}, "prod-1": {"client": 1}}

    assert registry.counts() == {"acme": acme, "beta": {"prod": {"client": 1}}}
    assert registry.counts(tenant="acme") == {"acme": acme}
    assert registry.counts(tenant="nobody") == {}
    assert registry.live_count("acme") == 4


def test_expired_ids_lists_items_past_their_ttl(registry, clock):
    seed(registry, [conn("live"), conn("old", expires_at=NOW - 10), conn("edge", expires_at=NOW)])

    assert set(registry.expired_ids()) == {"old"}
    clock.advance(1)
    assert set(registry.expired_ids()) == {"old", "edge"}


def test_scans_and_queries_page_at_about_one_megabyte(registry):
    padding = "x" * 1000
    # About 1.2 KB an item, 1.8 MB in all: DynamoDB's pages stop after 1 MB read.
    seed(registry, [conn(f"c-{i:04d}", instance_id=padding) for i in range(1500)])

    first = registry.client.scan(TableName=registry.table_name, Select="COUNT")
    assert 1024 * 1024 / 1300 < first["ScannedCount"] < 1024 * 1024 / 1100
    assert "LastEvaluatedKey" in first
    assert sum(sum(t.values()) for t in registry.counts()["acme"].values()) == 1500
    assert len(list(registry.for_instance(padding))) == 1500


# --- quota ----------------------------------------------------------------------


def counter(registry, tenant="acme") -> int | None:
    item = raw_item(registry, f"quota#{tenant}")
    return None if item is None else int(item["open_connections"]["N"])


def test_quota_refuses_the_third_registration_and_deregistration_frees_a_slot(quota):
    quota.register(conn("a0"))
    quota.register(conn("a1"))
    with pytest.raises(QuotaExceeded, match="acme has its 2 connections open"):
        quota.register(conn("a-over"))
    assert quota.get("a-over") is None
    quota.register(conn("b0", tenant="beta"))  # other tenants are not affected
    assert (counter(quota), counter(quota, "beta")) == (2, 1)

    quota.deregister("a0")
    quota.deregister("a0")  # already gone: counted down once
    assert counter(quota) == 1
    quota.register(conn("a-next"))
    with pytest.raises(QuotaExceeded):
        quota.register(conn("a-over"))


def test_quota_refuses_a_taken_id_without_counting(quota):
    quota.register(conn("a0"))
    with pytest.raises(RegistryError, match="exists") as caught:
        quota.register(conn("a0", deployment_id="other"))  # the id, not our record
    assert type(caught.value) is RegistryError
    assert counter(quota) == 1


def test_quota_state_and_lower_quota(quota, clock):
    quota.register(conn("orphan0", expires_at=NOW + 10))
    quota.register(conn("orphan1", expires_at=NOW + 10))
    clock.advance(60)  # expired, still counted
    with pytest.raises(QuotaExceeded):
        quota.register(conn("fresh", expires_at=NOW + 3600))

    counted, version = quota.quota_state("acme")
    assert (counted, version) == (2, 2)
    assert quota.lower_quota("acme", to=5, version=version) is False  # never raises it
    assert quota.lower_quota("acme", to=0, version=version - 1) is False  # moved meanwhile
    assert quota.lower_quota("acme", to=0, version=version) is True
    assert quota.quota_state("acme") == (0, 3)
    assert quota.quota_state("nobody") == (0, 0)
    quota.register(conn("fresh", expires_at=NOW + 3600))
    assert counter(quota) == 1


def test_batch_deregistration_counts_down_per_tenant_never_below_zero(quota):
    quota.register(conn("a0"))
    quota.register(conn("a1"))
    quota.register(conn("b0", tenant="beta"))
    tenants = {"a0": "acme", "a1": "acme", "b0": "beta", "ghost": "beta"}

    assert quota.deregister_many(tenants, tenants=tenants) == []

    assert (counter(quota), counter(quota, "beta")) == (0, 0)
    assert quota.counts() == {}  # counters are invisible to counts and listings
    assert list(quota.expired_ids()) == []


# --- the wire -------------------------------------------------------------------


def test_errors_have_dynamodbs_json_shape(fake, registry):
    registry.register(conn("c-1"))
    item = {"connection_id": {"S": "c-1"}}
    with pytest.raises(ClientError) as caught:
        registry.client.put_item(
            TableName=registry.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(connection_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert error_code(caught.value) == "ConditionalCheckFailedException"
    assert caught.value.response["Error"]["Message"] == "The conditional request failed"
    assert caught.value.response["Item"] == raw_item(registry, "c-1")

    with pytest.raises(ClientError) as caught:
        registry.client.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": registry.table_name,
                        "Key": {"connection_id": {"S": "nope"}},
                        "ConditionExpression": "attribute_exists(connection_id)",
                    }
                },
                {"Put": {"TableName": registry.table_name, "Item": {"connection_id": {"S": "x"}}}},
            ]
        )
    assert error_code(caught.value) == "TransactionCanceledException"
    assert [r["Code"] for r in caught.value.response["CancellationReasons"]] == [
        "ConditionalCheckFailed",
        "None",
    ]
    assert raw_item(registry, "x") is None  # nothing of a cancelled transaction is written

    body = json.dumps({"TableName": "missing"}).encode()
    request = Request(f"http://127.0.0.1:{fake.port}/", data=body, method="POST")
    request.add_header("X-Amz-Target", "DynamoDB_20120810.DescribeTable")
    request.add_header("Content-Type", "application/x-amz-json-1.0")
    with pytest.raises(HTTPError) as caught:
        urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert caught.value.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert json.loads(caught.value.read()) == {
        "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
        "message": "Requested resource not found: Table: missing not found",
    }


@pytest.mark.parametrize(
    "condition, message",
    [
        ("contains(tenant, :v)", "Function contains is not supported by bench.fake_dynamodb"),
        ("size(tenant) > :v", "Function size is not supported by bench.fake_dynamodb"),
        ("a.b = :v", "Nested document path in ConditionExpression is not supported"),
        ("tenant = = :v", "Invalid ConditionExpression: Syntax error"),
        (
            "attribute_exists(connection_id)",
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}",
        ),
        (
            "#n = :v",
            "An expression attribute name used in the document path is not defined; "
            "attribute name: #n",
        ),
    ],
)
def test_expressions_outside_what_it_knows_are_refused_clearly(registry, condition, message):
    with pytest.raises(ClientError) as caught:
        registry.client.put_item(
            TableName=registry.table_name,
            Item={"connection_id": {"S": "c"}},
            ConditionExpression=condition,
            ExpressionAttributeValues={":v": {"S": "a"}},
        )
    assert error_code(caught.value) == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]
    assert raw_item(registry, "c") is None


def test_keep_alive_answers_pipelined_requests_in_order(fake, table_name):
    def request(target: str, body: dict) -> bytes:
        payload = json.dumps(body).encode()
        return (
            f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.{target}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload

    with socket.create_connection(("127.0.0.1", fake.port), timeout=10) as sock:
        sock.sendall(
            request("DescribeTable", {"TableName": table_name})
            + b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"  # answered at once, but second
            + request("ListTables", {})
        )
        received = b""
        while received.count(b"HTTP/1.1 ") < 3 or not received.endswith(b"}"):
            received += sock.recv(65536)

    answers = received.split(b"HTTP/1.1 ")[1:]
    assert [a.split(b"\r\n")[0] for a in answers] == [b"400 Bad Request", b"200 OK", b"200 OK"]
    assert b"ResourceNotFoundException" in answers[0]
    assert b'"calls"' in answers[1]
    assert b"TableNames" in answers[2]


# --- counters and latency -------------------------------------------------------


def test_stats_count_calls_by_operation_and_reset(fake, client, table_name, clock):
    assert http(fake.port, "POST", "/reset-stats") == {"reset": True}
    registry = DynamoDBRegistry(client=client, table_name=table_name, clock=clock)
    registry.create_table()
    before = http(fake.port, "GET", "/stats")["items"]
    registry.register(conn("c-1"))
    registry.register(conn("c-2"))
    registry.refresh("c-1", NOW + 10)
    registry.refresh("missing", NOW + 10)
    registry.get("c-1")
    registry.deregister("c-2")
    registry.deregister_many(["c-1", "c-3"])

    stats = http(fake.port, "GET", "/stats")

    assert stats["calls"] == {
        "DescribeTable": 2,
        "CreateTable": 1,
        "DescribeTimeToLive": 1,
        "UpdateTimeToLive": 1,
        "PutItem": 2,
        "UpdateItem": 2,
        "GetItem": 1,
        "DeleteItem": 1,
        "BatchWriteItem": 1,
    }
    assert stats["errors"] == {"ResourceNotFoundException": 1, "ConditionalCheckFailedException": 1}
    assert stats["item_writes"] == 2 + 2 + 1 + 2
    assert stats["items"] == before
    assert stats["latency_ms"] == LATENCY_MS
    http(fake.port, "POST", "/reset-stats")
    assert http(fake.port, "GET", "/stats")["calls"] == {}


def test_every_call_takes_the_latency_and_calls_overlap():
    server = fake_process(SLOW_MS).start()
    try:
        client = make_client(
            region="us-east-1",
            endpoint_url=f"http://127.0.0.1:{server.port}",
            access_key_id="testing",
            secret_access_key="testing",
            max_connections=40,
        )
        registry = DynamoDBRegistry(client=client, table_name="slow", max_workers=40)
        registry.create_table()
        registry.register(conn("c-1"))

        started = time.monotonic()
        assert registry.get("c-1") == conn("c-1")
        assert time.monotonic() - started >= SLOW_MS / 1000

        started = time.monotonic()
        with ThreadPoolExecutor(40) as pool:
            found = list(pool.map(registry.get, ["c-1"] * 40))
        elapsed = time.monotonic() - started
        assert found == [conn("c-1")] * 40
        assert SLOW_MS / 1000 <= elapsed < 40 * SLOW_MS / 1000 / 4  # overlapped, not serial
    finally:
        assert server.stop() == 0
