"""The seed's server, as its README describes it: `python -m bench.reference_server`.

A plain `websockets` server (asyncio API) with the registry in DynamoDB, built the way the seed
describes it and no worse: one shared low-level boto3 client, every call run through
`asyncio.to_thread` so that the event loop never blocks, and on every connection:

- the query string gives `tenant`, `deployment_id` and `connection_type` (all three required);
- a uuid4 `connection_id`, a PutItem of the connection's item, then `connected`;
- `ping` refreshes the item's TTL with an UpdateItem (the seed's "Heartbeat (refreshes TTL)",
  so one write per ping), then `pong`; `info` answers from memory; anything else is echoed;
- on close, whatever the reason, a DeleteItem.

Items carry the same attributes as the project's (realtime/registry/dynamodb/codec.py), so both
servers can share one table. The seed's environment variables apply (HOST, PORT, AWS_*,
DYNAMODB_TABLE_NAME, DYNAMODB_ENDPOINT_URL, CONNECTION_TTL_SECONDS); REGISTRY_ENABLED=false (or
--no-registry) skips DynamoDB altogether, for the cost of the registry. Once listening it prints
`Listening on TCP address HOST:PORT`, as daphne does, so the same readiness pattern finds the
port (`--port 0` lets the OS choose). SIGTERM or SIGINT closes every connection (1001),
deregisters them and exits.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import boto3
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["Registry", "main"]

logger = logging.getLogger("reference_server")

REQUIRED = ("tenant", "deployment_id", "connection_type")


def isoformat(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class Registry:
    """The seed's registry: one item per connection, written and deleted as it happens."""

    def __init__(self, *, table_name: str, ttl_seconds: int, endpoint_url: str | None):
        self.table_name = table_name
        self.ttl_seconds = ttl_seconds
        # One client for the process; boto3 clients are thread-safe, and the to_thread pool
        # (min(32, cores + 4) threads) stays under botocore's default pool of 10 connections.
        self.client = boto3.client(
            "dynamodb",
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
            endpoint_url=endpoint_url,
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        )
        self.instance_id = f"{socket.gethostname()[:64]}-{os.getpid()}-reference"

    def ensure_table(self) -> None:
        """Create the table (key `connection_id`, TTL on `ttl`) when it does not exist."""
        try:
            self.client.describe_table(TableName=self.table_name)
            return
        except self.client.exceptions.ResourceNotFoundException:
            pass
        self.client.create_table(
            TableName=self.table_name,
            AttributeDefinitions=[{"AttributeName": "connection_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "connection_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.client.get_waiter("table_exists").wait(TableName=self.table_name)
        self.client.update_time_to_live(
            TableName=self.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
        )

    def put(self, record: dict) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "connection_id": {"S": record["connection_id"]},
                "tenant": {"S": record["tenant"]},
                "deployment_id": {"S": record["deployment_id"]},
                "connection_type": {"S": record["connection_type"]},
                "connected_at": {"S": record["connected_at"]},
                "ttl": {"N": str(record["ttl"])},
                "instance_id": {"S": self.instance_id},
                "channel_name": {"S": ""},
                "client_addr": {"S": record["client_addr"]},
                "scope_key": {
                    "S": f"{record['deployment_id']}#{record['connection_type']}"
                    f"#{record['connection_id']}"
                },
            },
        )

    def refresh(self, connection_id: str, ttl: int) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key={"connection_id": {"S": connection_id}},
            UpdateExpression="SET #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": "ttl"},  # TTL is a reserved word
            ExpressionAttributeValues={":ttl": {"N": str(ttl)}},
        )

    def delete(self, connection_id: str) -> None:
        self.client.delete_item(
            TableName=self.table_name, Key={"connection_id": {"S": connection_id}}
        )


def parse_query(path: str) -> dict[str, str] | str:
    """The three connection parameters, or the name of the first missing one."""
    query = parse_qs(urlsplit(path).query)
    params = {}
    for name in REQUIRED:
        values = query.get(name)
        if not values or not values[0]:
            return name
        params[name] = values[0]
    return params


class Handler:
    def __init__(self, registry: Registry | None, ttl_seconds: int):
        self.registry = registry
        self.ttl_seconds = ttl_seconds

    async def __call__(self, ws: ServerConnection) -> None:
        params = parse_query(ws.request.path)
        if isinstance(params, str):
            await ws.send(
                json.dumps({"type": "error", "message": f"missing query parameter: {params}"})
            )
            await ws.close(1008, f"missing {params}")
            return
        now = time.time()
        host, port = ws.remote_address[:2]
        record = {
            "connection_id": str(uuid.uuid4()),
            **params,
            "connected_at": isoformat(now),
            "ttl": int(now) + self.ttl_seconds,
            "client_addr": f"{host}:{port}",
        }
        connection_id = record["connection_id"]
        if self.registry is not None:
            try:
                await asyncio.to_thread(self.registry.put, record)
            except Exception:
                logger.exception("registration failed for %s", connection_id)
                await ws.close(1011, "registry unavailable")
                return
        logger.info("Connection registered: %s tenant=%s", connection_id, record["tenant"])
        try:
            await ws.send(json.dumps({"type": "connected", **self._public(record)}))
            async for message in ws:
                await self._answer(ws, record, message)
        except ConnectionClosed:
            pass
        finally:
            if self.registry is not None:
                try:
                    await asyncio.to_thread(self.registry.delete, connection_id)
                except Exception:
                    logger.exception("deregistration failed for %s", connection_id)
            logger.info("Connection closed: %s", connection_id)

    async def _answer(self, ws: ServerConnection, record: dict, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            data = message if isinstance(message, str) else message.decode("utf-8", "replace")
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "ping":
            ttl = int(time.time()) + self.ttl_seconds
            if self.registry is not None:
                try:
                    await asyncio.to_thread(self.registry.refresh, record["connection_id"], ttl)
                    record["ttl"] = ttl
                except Exception:
                    logger.exception("TTL refresh failed for %s", record["connection_id"])
            else:
                record["ttl"] = ttl
            await ws.send(json.dumps({"type": "pong", "timestamp": isoformat(time.time())}))
        elif kind == "info":
            await ws.send(json.dumps({"type": "info", **self._public(record)}))
        else:
            await ws.send(json.dumps({"type": "echo", "data": data}))

    @staticmethod
    def _public(record: dict) -> dict:
        return {
            "connection_id": record["connection_id"],
            "tenant": record["tenant"],
            "deployment_id": record["deployment_id"],
            "connection_type": record["connection_type"],
            "connected_at": record["connected_at"],
            "expires_at": isoformat(record["ttl"]),
        }


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


async def serve_forever(host: str, port: int, registry_enabled: bool) -> None:
    ttl_seconds = int(os.environ.get("CONNECTION_TTL_SECONDS", "3600"))
    registry = None
    if registry_enabled:
        registry = Registry(
            table_name=os.environ.get("DYNAMODB_TABLE_NAME", "websocket_connections"),
            ttl_seconds=ttl_seconds,
            endpoint_url=os.environ.get("DYNAMODB_ENDPOINT_URL") or None,
        )
        if registry.client.meta.endpoint_url.startswith("http://"):
            await asyncio.to_thread(registry.ensure_table)  # a local endpoint: development
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    async with serve(Handler(registry, ttl_seconds), host, port) as server:
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        print(f"Listening on TCP address {bound_host}:{bound_port}", flush=True)
        logger.info("registry %s", "enabled" if registry else "disabled")
        await stop
    # Leaving `serve` closed every connection (1001) and waited for their handlers, so every
    # DeleteItem has run.


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8765")))
    parser.add_argument(
        "--no-registry",
        action="store_true",
        help="skip DynamoDB (also REGISTRY_ENABLED=false)",
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    enabled = _flag("REGISTRY_ENABLED", True) and not args.no_registry
    asyncio.run(serve_forever(args.host, args.port, enabled))


if __name__ == "__main__":
    main()
