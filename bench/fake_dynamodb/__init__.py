"""A DynamoDB-compatible HTTP endpoint that answers every call after a fixed latency.

    python -m bench.fake_dynamodb [--host 127.0.0.1] [--port 0] [--latency-ms 5]

Benchmarks point the server at it (DYNAMODB_ENDPOINT_URL) so that their figures measure the
server, not the emulator: moto's server handles one request at a time and saturates near 200
calls/s, this one overlaps requests (one asyncio loop, no thread per request) and sustains
thousands of calls/s. It prints `Running on http://<host>:<port>` once listening, like moto.

It speaks DynamoDB's JSON protocol (`POST /`, `X-Amz-Target: DynamoDB_20120810.<Operation>`,
SigV4 headers accepted and ignored) for what realtime.registry.dynamodb uses, on in-memory
tables: CreateTable, DescribeTable, UpdateTable (GSI create/delete), DeleteTable, ListTables,
DescribeTimeToLive, UpdateTimeToLive, PutItem, GetItem, UpdateItem, DeleteItem, BatchWriteItem,
TransactWriteItems, Query (table or GSI) and Scan. Expressions: conditions and filters with
= <> < <= > >=, BETWEEN, IN, AND/OR/NOT, parentheses, attribute_exists, attribute_not_exists
and begins_with; updates with SET (operands, `a + b`, `a - b`, if_not_exists) and REMOVE;
projections of top-level attributes. Anything else is refused with a ValidationException that
says so, never silently misread.

Each call is applied when it arrives (the loop is single-threaded, so every conditional write
and transaction is atomic, as in DynamoDB) and its answer is sent `--latency-ms` later.

Not DynamoDB: no TTL deletion (expired items stay until deleted, as they may in DynamoDB for
days), no throttling, no nested document paths, no reserved-word check, item sizes for the
1 MB page limit are estimates, and tables and indexes are ACTIVE at once.

Counters, answered at once (no latency): `GET /stats` -> {"calls": {"PutItem": n, ...},
"items": <items in all tables>, "item_writes": <items written or deleted, batches and
transactions counted per item>, "lease_writes": <of them, to server instances' leases>,
"errors": {code: n}, "seconds": <since reset>,
"cpu_seconds": <process CPU since reset>, ...}; `POST /reset-stats` zeroes them.

    python -m bench.fake_dynamodb --measure [--latency-ms 5] [--connections 200] [--seconds 5]
        [--client raw|boto3]

starts the endpoint as a child process and drives it from this process (raw keep-alive HTTP
connections on asyncio, or boto3 clients on threads), then prints the calls/s it sustained.

The parts, one job each: values.py (attribute values), expression_parser.py,
expression_compiler.py and expressions.py (expressions), tables.py (tables and indexes),
table_operations.py, item_operations.py and query_operations.py (the calls), service.py (the
dispatch and counters), server.py (HTTP), measure.py (--measure), __main__.py (the command).
"""

from bench.fake_dynamodb.errors import DynamoError
from bench.fake_dynamodb.measure import measure
from bench.fake_dynamodb.server import CONTENT_TYPE, TARGET_PREFIX, serve
from bench.fake_dynamodb.service import FakeDynamoDB

__all__ = ["CONTENT_TYPE", "TARGET_PREFIX", "DynamoError", "FakeDynamoDB", "measure", "serve"]
