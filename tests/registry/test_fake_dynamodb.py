"""The benchmark's fake DynamoDB endpoint (bench/fake_dynamodb/) as a real process: its own
protocol, where it must answer as DynamoDB does, and its counters and latency.

The registry's behaviour on it is held in the contract suite (test_contract.py), with the
same cases as on moto: benchmarks that use the fake are only worth something if it passes them.
"""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from botocore.exceptions import ClientError

from realtime.registry.dynamodb import DynamoDBRegistry
from tests.conftest import NOW
from tests.records import conn, seed
from tests.registry.conftest import FAKE_LATENCY_MS, fake_dynamodb_client, fake_dynamodb_process
from tests.registry.store import ids, raw_item

pytestmark = pytest.mark.e2e

SLOW_MS = 100


def http(port: int, method: str, path: str) -> dict:
    with urlopen(Request(f"http://127.0.0.1:{port}{path}", method=method), timeout=10) as r:
        return json.loads(r.read())


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


# --- the process ----------------------------------------------------------------


def test_announces_itself_in_one_line_like_moto(fake_endpoint):
    assert fake_endpoint.lines == [f"Running on http://127.0.0.1:{fake_endpoint.port}"]


def test_sigterm_stops_it_promptly_despite_open_keep_alive_connections():
    server = fake_dynamodb_process(0).start()
    idle = socket.create_connection(("127.0.0.1", server.port))
    idle.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200 OK")  # answered, left open
    started = time.monotonic()

    assert server.stop(timeout=10) == 0
    assert time.monotonic() - started < 5
    idle.close()


# --- the table ------------------------------------------------------------------


def test_create_table_adds_the_indexes_to_a_table_without_them(fake_client, fake_table_name, clock):
    fake_client.create_table(
        TableName=fake_table_name,
        KeySchema=[{"AttributeName": "connection_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connection_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    registry = DynamoDBRegistry(client=fake_client, table_name=fake_table_name, clock=clock)
    registry.register(conn("before"))  # indexed when the index is created

    report = registry.create_table()

    assert report.indexes_created == ["by_tenant", "by_instance"]
    registry.register(conn("after"))
    assert ids(registry.for_tenant("acme").connections) == ["after", "before"]
    assert sorted(ids(registry.for_instance("host-a-1-0a0b0c0d"))) == ["after", "before"]


# --- queries --------------------------------------------------------------------


def test_a_start_key_outside_the_key_condition_is_refused_like_dynamodb(fake_dynamodb):
    seed(fake_dynamodb, [conn("a1"), conn("p1", deployment_id="prod-1")])
    start = {
        "connection_id": {"S": "a1"},
        "tenant": {"S": "acme"},
        "scope_key": {"S": "prod#client#a1"},
    }
    kwargs = {
        "TableName": fake_dynamodb.table_name,
        "IndexName": "by_tenant",
        "KeyConditionExpression": "tenant = :t AND begins_with(scope_key, :p)",
        "ExpressionAttributeValues": {":t": {"S": "acme"}, ":p": {"S": "prod-1#"}},
    }
    with pytest.raises(ClientError) as caught:
        fake_dynamodb.client.query(**kwargs, ExclusiveStartKey=start)
    assert error_code(caught.value) == "ValidationException"
    assert "outside query boundaries" in str(caught.value)

    kwargs["ExpressionAttributeValues"][":p"] = {"S": "prod#"}
    assert fake_dynamodb.client.query(**kwargs, ExclusiveStartKey=start)["Count"] == 0


def test_a_query_that_stops_at_its_limit_returns_a_last_evaluated_key_like_dynamodb(fake_dynamodb):
    # DynamoDB names the last item read whenever Limit stopped it, even if it was the last one.
    seed(fake_dynamodb, [conn("a1"), conn("a2")])
    kwargs = {
        "TableName": fake_dynamodb.table_name,
        "IndexName": "by_instance",
        "KeyConditionExpression": "instance_id = :i",
        "ExpressionAttributeValues": {":i": {"S": "host-a-1-0a0b0c0d"}},
        "Limit": 2,
    }
    first = fake_dynamodb.client.query(**kwargs)
    assert [i["connection_id"]["S"] for i in first["Items"]] == ["a1", "a2"]
    assert first["LastEvaluatedKey"] == {
        "connection_id": {"S": "a2"},
        "instance_id": {"S": "host-a-1-0a0b0c0d"},
    }
    rest = fake_dynamodb.client.query(**kwargs, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert (rest["Items"], rest["Count"], "LastEvaluatedKey" in rest) == ([], 0, False)


def test_scans_and_queries_page_at_about_one_megabyte(fake_dynamodb):
    padding = "x" * 1000
    # About 1.2 KB an item, 1.8 MB in all: DynamoDB's pages stop after 1 MB read.
    seed(fake_dynamodb, [conn(f"c-{i:04d}", instance_id=padding) for i in range(1500)])

    first = fake_dynamodb.client.scan(TableName=fake_dynamodb.table_name, Select="COUNT")
    assert 1024 * 1024 / 1300 < first["ScannedCount"] < 1024 * 1024 / 1100
    assert "LastEvaluatedKey" in first
    assert sum(sum(t.values()) for t in fake_dynamodb.counts()["acme"].values()) == 1500
    assert len(list(fake_dynamodb.for_instance(padding))) == 1500


# --- the wire -------------------------------------------------------------------


def test_errors_have_dynamodbs_json_shape(fake_endpoint, fake_dynamodb):
    fake_dynamodb.register(conn("c-1"))
    item = {"connection_id": {"S": "c-1"}}
    with pytest.raises(ClientError) as caught:
        fake_dynamodb.client.put_item(
            TableName=fake_dynamodb.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(connection_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert error_code(caught.value) == "ConditionalCheckFailedException"
    assert caught.value.response["Error"]["Message"] == "The conditional request failed"
    assert caught.value.response["Item"] == raw_item(fake_dynamodb, "c-1")

    with pytest.raises(ClientError) as caught:
        fake_dynamodb.client.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": fake_dynamodb.table_name,
                        "Key": {"connection_id": {"S": "nope"}},
                        "ConditionExpression": "attribute_exists(connection_id)",
                    }
                },
                {
                    "Put": {
                        "TableName": fake_dynamodb.table_name,
                        "Item": {"connection_id": {"S": "x"}},
                    }
                },
            ]
        )
    assert error_code(caught.value) == "TransactionCanceledException"
    assert [r["Code"] for r in caught.value.response["CancellationReasons"]] == [
        "ConditionalCheckFailed",
        "None",
    ]
    assert raw_item(fake_dynamodb, "x") is None  # nothing of a cancelled transaction is written

    body = json.dumps({"TableName": "missing"}).encode()
    request = Request(f"http://127.0.0.1:{fake_endpoint.port}/", data=body, method="POST")
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
def test_expressions_outside_what_it_knows_are_refused_clearly(fake_dynamodb, condition, message):
    with pytest.raises(ClientError) as caught:
        fake_dynamodb.client.put_item(
            TableName=fake_dynamodb.table_name,
            Item={"connection_id": {"S": "c"}},
            ConditionExpression=condition,
            ExpressionAttributeValues={":v": {"S": "a"}},
        )
    assert error_code(caught.value) == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]
    assert raw_item(fake_dynamodb, "c") is None


def test_keep_alive_answers_pipelined_requests_in_order(fake_endpoint, fake_table_name):
    def request(target: str, body: dict) -> bytes:
        payload = json.dumps(body).encode()
        return (
            f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.{target}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload

    with socket.create_connection(("127.0.0.1", fake_endpoint.port), timeout=10) as sock:
        sock.sendall(
            request("DescribeTable", {"TableName": fake_table_name})
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


def test_stats_count_calls_by_operation_and_reset(
    fake_endpoint, fake_client, fake_table_name, clock
):
    assert http(fake_endpoint.port, "POST", "/reset-stats") == {"reset": True}
    registry = DynamoDBRegistry(client=fake_client, table_name=fake_table_name, clock=clock)
    registry.create_table()
    before = http(fake_endpoint.port, "GET", "/stats")["items"]
    registry.register(conn("c-1"))
    registry.register(conn("c-2"))
    registry.refresh("c-1", NOW + 10)
    registry.refresh("missing", NOW + 10)
    registry.get("c-1")
    registry.deregister("c-2")
    registry.deregister_many(["c-1", "c-3"])

    stats = http(fake_endpoint.port, "GET", "/stats")

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
    assert stats["latency_ms"] == FAKE_LATENCY_MS
    http(fake_endpoint.port, "POST", "/reset-stats")
    assert http(fake_endpoint.port, "GET", "/stats")["calls"] == {}


def test_every_call_takes_the_latency_and_calls_overlap():
    server = fake_dynamodb_process(SLOW_MS).start()
    try:
        client = fake_dynamodb_client(server)  # a pool of 50 connections: 40 calls at once
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
