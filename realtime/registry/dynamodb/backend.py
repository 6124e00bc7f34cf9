"""ConnectionRegistry: the one place that speaks DynamoDB.

Consumers, commands, views and the API call its methods; nothing else imports boto3. The
consistency rules it implements (conditional writes, TTL as a safety net, expired items
filtered on read) are described once, in docs/registry.md.

Every method is synchronous (plain boto3); the `a*` twins run it on the registry's own thread
pool through `sync_to_async(thread_sensitive=False)`, so a slow DynamoDB ties up those threads
only, never the event loop or Django's single sync thread.
"""

import base64
import binascii
import contextlib
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import boto3
from botocore import exceptions as botocore_exceptions
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from realtime import metrics
from realtime.core.connection import Connection
from realtime.core.logs import event
from realtime.registry.base import ConnectionRegistry, Page, TableReport
from realtime.registry.coalescing import Coalescer
from realtime.registry.errors import (
    InvalidCursor,
    QuotaExceeded,
    RegistryError,
    RegistryUnavailable,
)

__all__ = [
    "ATTRIBUTE_DEFINITIONS",
    "GLOBAL_SECONDARY_INDEXES",
    "INSTANCE_INDEX",
    "TENANT_INDEX",
    "DynamoDBRegistry",
    "from_item",
    "make_client",
    "to_item",
]

logger = logging.getLogger(__name__)

# Connections of a tenant, narrowed with begins_with on "deployment_id#connection_type#".
TENANT_INDEX = "by_tenant"
# Connections held by one server process: shutdown sweeps and dead-instance cleanup.
INSTANCE_INDEX = "by_instance"
_SCOPE_KEY = "scope_key"
_BATCH_SIZE = 25  # BatchWriteItem's limit
# Calls per coalesced registration batch. Registration waits for it, so it gets fewer
# retries than a sweep's deletions: a client should hear 1013 within a couple of seconds.
_BATCH_ATTEMPTS = 2
# Errors that are answers, not failures: a condition that did not hold.
_CALLER_DECIDES = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})
# A tenant's counter of open connections, when quotas are on. Tenants cannot contain "#" and
# connection ids are uuids, so these keys never meet a connection's; the items carry no
# `tenant` attribute, so no index and no count sees them.
_QUOTA_KEY = "quota#{tenant}"
_QUOTA_COUNT = "open_connections"
_QUOTA_VERSION = "version"
_QUOTA_NAMES = {"#n": _QUOTA_COUNT, "#v": _QUOTA_VERSION}
_BUMP_VERSION = "#v = if_not_exists(#v, :zero) + :one"
_TRANSACTION_ATTEMPTS = 5


def make_client(
    *,
    region: str,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    connect_timeout: float = 1.0,
    read_timeout: float = 2.0,
    max_attempts: int = 2,
    max_connections: int = 16,
    validate_parameters: bool = False,
):
    """A thread-safe DynamoDB client with bounded timeouts, retries and connection pool.

    botocore's client-side parameter validation is off by default: it adds 10-15% to a
    PutItem's CPU and 15-60% to a 25-item batch's (`python -m bench.boto3_cost`), for
    requests this module builds and DynamoDB validates again anyway.
    """
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max_connections,
        tcp_keepalive=True,
        parameter_validation=validate_parameters,
    )
    # A session of its own: boto3's default session is not safe to share across threads.
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


def scope_key(deployment_id: str, connection_type: str, connection_id: str) -> str:
    # Values are validated to [A-Za-z0-9._-], so "#" cannot appear inside one.
    return f"{deployment_id}#{connection_type}#{connection_id}"


def to_item(connection: Connection) -> dict:
    return {
        "connection_id": {"S": connection.connection_id},
        "tenant": {"S": connection.tenant},
        "deployment_id": {"S": connection.deployment_id},
        "connection_type": {"S": connection.connection_type},
        "connected_at": {"S": connection.connected_at},
        "ttl": {"N": str(connection.expires_at)},
        "instance_id": {"S": connection.instance_id},
        "channel_name": {"S": connection.channel_name},
        "client_addr": {"S": connection.client_addr},
        _SCOPE_KEY: {
            "S": scope_key(
                connection.deployment_id, connection.connection_type, connection.connection_id
            )
        },
    }


def from_item(item: dict) -> Connection:
    def text(name: str) -> str:
        return item.get(name, {}).get("S", "")

    return Connection(
        connection_id=text("connection_id"),
        tenant=text("tenant"),
        deployment_id=text("deployment_id"),
        connection_type=text("connection_type"),
        connected_at=text("connected_at"),
        expires_at=int(item.get("ttl", {}).get("N", "0")),
        instance_id=text("instance_id"),
        channel_name=text("channel_name"),
        client_addr=text("client_addr"),
    )


def _encode_cursor(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


# The attributes of a start key on each index: the index's keys and the table's.
_START_KEYS = {
    TENANT_INDEX: ("connection_id", "tenant", _SCOPE_KEY),
    INSTANCE_INDEX: ("connection_id", "instance_id"),
}


def _decode_cursor(cursor: str, index: str, partition: tuple[str, str], sort_prefix: str) -> dict:
    """A start key from a cursor, checked to lie inside the query it is used with."""
    partition_name, partition_value = partition
    sort_name = _START_KEYS[index][-1]
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        valid = (
            isinstance(key, dict)
            and set(key) == set(_START_KEYS[index])
            and all(
                isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str)
                for v in key.values()
            )
            and key[partition_name]["S"] == partition_value
            # DynamoDB rejects a start key outside the key condition (ValidationException).
            and key[sort_name]["S"].startswith(sort_prefix)
        )
    except (ValueError, UnicodeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidCursor("cursor is not valid for this query")
    return key


def _quota_key(tenant: str) -> dict:
    return {"connection_id": {"S": _QUOTA_KEY.format(tenant=tenant)}}


def _cancellation_codes(exc: ClientError) -> list[str]:
    """The per-action codes of a cancelled transaction ("None" for actions that were fine)."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise exc
    return [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]


def _outcome(call: Callable, argument) -> BaseException | None:
    """`call(argument)`'s failure as a value, for one request of a batch."""
    try:
        call(argument)
    except RegistryError as exc:
        return exc
    return None


def _unprocessed(kind: str) -> RegistryUnavailable:
    return RegistryUnavailable(f"DynamoDB batch_write_item left the {kind}", reason="unprocessed")


def _cancelled_item(exc: ClientError, action: int) -> dict | None:
    """The item an action of a cancelled transaction found (ReturnValuesOnConditionCheckFailure)."""
    reasons = exc.response.get("CancellationReasons", [])
    return reasons[action].get("Item") if action < len(reasons) else None


def _unavailable(operation: str, exc: Exception) -> RegistryUnavailable:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "ClientError")
    else:
        code = type(exc).__name__
    if isinstance(
        exc, (botocore_exceptions.NoCredentialsError, botocore_exceptions.PartialCredentialsError)
    ):
        reason = "no_credentials"
    elif isinstance(exc, botocore_exceptions.ConnectionError):
        reason = "unreachable"  # refused, DNS, connect timeout, proxy
    elif isinstance(exc, botocore_exceptions.ReadTimeoutError):
        reason = "timeout"
    else:
        reason = code
    return RegistryUnavailable(f"DynamoDB {operation} failed: {code}", reason=reason)


class DynamoDBRegistry(ConnectionRegistry):
    """Connection records in one DynamoDB table.

    Args:
        client: a boto3 DynamoDB client (see `make_client`).
        table_name: the table, created by `create_table` or by infrastructure code.
        clock: epoch seconds now; reads treat items with `ttl` before it as gone.
        max_workers: threads for the async twins; match the client's connection pool.
        tenant_limit: open connections allowed per tenant across every instance; 0 is no
            limit. Enforced with a counter item per tenant (see docs/registry.md).
    """

    def __init__(
        self,
        *,
        client,
        table_name: str,
        clock: Callable[[], float] = time.time,
        max_workers: int = 16,
        tenant_limit: int = 0,
    ):
        super().__init__(table_name=table_name, max_workers=max_workers)
        self.client = client
        self.clock = clock
        self.tenant_limit = tenant_limit
        # Concurrent registrations and deregistrations go out as batch calls (coalescing.py).
        self._registrations = Coalescer(self._async(self.register_batch), max_batch=_BATCH_SIZE)
        self._deregistrations = Coalescer(self._async(self.deregister_batch), max_batch=_BATCH_SIZE)

    @property
    def location(self) -> str:
        """The URL the client sends requests to (AWS's regional endpoint unless overridden)."""
        return self.client.meta.endpoint_url

    def with_table(self, table_name: str) -> "DynamoDBRegistry":
        return DynamoDBRegistry(
            client=self.client,
            table_name=table_name,
            clock=self.clock,
            tenant_limit=self.tenant_limit,
        )

    def _call(self, operation: str, *, with_table: bool = True, **kwargs) -> dict:
        if with_table:
            kwargs["TableName"] = self.table_name
        with metrics.registry_call(operation) as call:
            try:
                return getattr(self.client, operation)(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _CALLER_DECIDES:
                    raise
                raise call.failed(_unavailable(operation, exc)) from exc
            except BotoCoreError as exc:
                raise call.failed(_unavailable(operation, exc)) from exc

    # --- writes -------------------------------------------------------------

    def register(self, connection: Connection) -> None:
        """Write a new connection's item; never overwrites an existing one.

        Raises:
            RegistryError: the id is already taken (it never is for a uuid4).
            RegistryUnavailable: DynamoDB failed; the item may or may not have been written.
        """
        if self.tenant_limit:
            self._register_within_quota(connection)
            return
        item = to_item(connection)
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(connection_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Item") == item:
                return  # a retry of our own put, whose first attempt landed after all
            raise RegistryError(f"connection id {connection.connection_id} exists") from exc

    def _register_within_quota(self, connection: Connection) -> None:
        # One transaction: the tenant's counter goes up only if it is under the limit, and
        # only together with the item, so that instances racing for the last slot cannot
        # both win it.
        item = to_item(connection)
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                self._call(
                    "transact_write_items",
                    with_table=False,
                    TransactItems=[
                        {"Update": self._quota_update(connection.tenant)},
                        {
                            "Put": {
                                "TableName": self.table_name,
                                "Item": item,
                                "ConditionExpression": "attribute_not_exists(connection_id)",
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            }
                        },
                    ],
                )
                return
            except ClientError as exc:
                (quota, put), existing = _cancellation_codes(exc), _cancelled_item(exc, 1)
            if put == "ConditionalCheckFailed":
                if existing == item:
                    return  # a retry of our own transaction, whose first attempt landed
                raise RegistryError(f"connection id {connection.connection_id} exists")
            if quota == "ConditionalCheckFailed":
                raise QuotaExceeded(
                    f"tenant {connection.tenant} has its {self.tenant_limit} connections open"
                )
            # TransactionConflict: another registration of the tenant went first.
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise RegistryUnavailable(
            "DynamoDB transact_write_items failed: TransactionConflict", reason="conflict"
        )

    def _quota_update(self, tenant: str) -> dict:
        return {
            "TableName": self.table_name,
            "Key": _quota_key(tenant),
            "UpdateExpression": f"SET #n = if_not_exists(#n, :zero) + :one, {_BUMP_VERSION}",
            "ConditionExpression": "attribute_not_exists(#n) OR #n < :limit",
            "ExpressionAttributeNames": _QUOTA_NAMES,
            "ExpressionAttributeValues": {
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":limit": {"N": str(self.tenant_limit)},
            },
        }

    def quota_state(self, tenant: str) -> tuple[int, int]:
        """A tenant's counter as (open connections counted, version); (0, 0) when absent.

        The version changes with every write to the counter.
        """
        item = self._call("get_item", Key=_quota_key(tenant), ConsistentRead=True).get("Item", {})
        return (
            int(item.get(_QUOTA_COUNT, {}).get("N", "0")),
            int(item.get(_QUOTA_VERSION, {}).get("N", "0")),
        )

    def lower_quota(self, tenant: str, *, to: int, version: int) -> bool:
        """Set a tenant's counter to `to` if it was not written since `version` was read.

        Returns whether it was set. See docs/registry.md ("Per-tenant quota") for when this is
        safe: the caller must have counted the live items after the version was read, and late
        enough for the tenant index to show every registration made before that.
        """
        try:
            self._call(
                "update_item",
                Key=_quota_key(tenant),
                UpdateExpression=f"SET #n = :to, {_BUMP_VERSION}",
                ConditionExpression="#v = :version AND #n > :to",
                ExpressionAttributeNames=_QUOTA_NAMES,
                ExpressionAttributeValues={
                    ":to": {"N": str(to)},
                    ":version": {"N": str(version)},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
            )
        except ClientError:
            return False
        return True

    def _release_quota(self, tenant: str, count: int) -> None:
        """Count `count` deleted connections down from the tenant's counter (never below 0)."""
        values = {":k": {"N": str(count)}, ":zero": {"N": "0"}, ":one": {"N": "1"}}
        try:
            try:
                self._call(
                    "update_item",
                    Key=_quota_key(tenant),
                    UpdateExpression=f"SET #n = #n - :k, {_BUMP_VERSION}",
                    ConditionExpression="#n >= :k",
                    ExpressionAttributeNames=_QUOTA_NAMES,
                    ExpressionAttributeValues=values,
                )
            except ClientError:
                # Drifted below: floor at zero. A missing counter stays missing.
                with contextlib.suppress(ClientError):
                    self._call(
                        "update_item",
                        Key=_quota_key(tenant),
                        UpdateExpression=f"SET #n = :zero, {_BUMP_VERSION}",
                        ConditionExpression="attribute_exists(#n)",
                        ExpressionAttributeNames=_QUOTA_NAMES,
                        ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
                    )
        except RegistryUnavailable as exc:
            # Counted too high until a recount lowers it; the item itself is gone.
            logger.warning(event("registry.quota_release_failed", tenant=tenant, error=exc))

    def refresh(self, connection_id: str, expires_at: int) -> bool:
        """Move an existing item's TTL to `expires_at`.

        Returns False when the item is gone: a refresh never recreates a deregistered item.
        """
        try:
            self._call(
                "update_item",
                Key={"connection_id": {"S": connection_id}},
                UpdateExpression="SET #ttl = :ttl",
                ConditionExpression="attribute_exists(connection_id)",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":ttl": {"N": str(expires_at)}},
            )
        except ClientError:
            return False
        return True

    def deregister(self, connection_id: str) -> None:
        """Delete a connection's item. Deleting an item that is already gone is not an error."""
        key = {"connection_id": {"S": connection_id}}
        if not self.tenant_limit:
            self._call("delete_item", Key=key)
            return
        # The old item says whether this call deleted it, and whose counter to count down.
        old = self._call("delete_item", Key=key, ReturnValues="ALL_OLD").get("Attributes")
        if old and "tenant" in old:
            self._release_quota(old["tenant"]["S"], 1)

    def deregister_many(
        self,
        connection_ids: Iterable[str],
        *,
        tenants: Mapping[str, str] | None = None,
        attempts: int = 5,
    ) -> list[str]:
        """Delete many items with batch writes. Returns the ids that could not be deleted.

        With quotas on, `tenants` (id -> tenant) says whose counters to count down for the
        deleted items. Batch writes do not say whether an item existed, so an item deleted
        by someone else meanwhile is counted down twice; the counter then admits one more
        connection than the limit until it is next recounted.
        """
        ids = list(dict.fromkeys(connection_ids))
        failed = self._batch_delete(ids, attempts)
        if self.tenant_limit and tenants:
            deleted = Counter(tenants[cid] for cid in set(ids) - set(failed) if cid in tenants)
            for tenant, count in deleted.items():
                self._release_quota(tenant, count)
        return failed

    def register_batch(self, connections: Sequence[Connection]) -> list[BaseException | None]:
        """Register several connections in one call; one outcome per connection, in order.

        One connection is a plain conditional put. More are `BatchWriteItem` puts: one call
        instead of many, at the write units of plain puts. Batch puts cannot carry a
        condition, and need none: connection ids are uuid4s this server makes, so there is no
        item to overwrite. (A `TransactWriteItems` of conditional puts would cost twice the
        write units, and moto copies the whole table for each transaction.)
        """
        if len(connections) == 1:
            return [_outcome(self.register, connections[0])]
        requests = [{"PutRequest": {"Item": to_item(connection)}} for connection in connections]
        # A client waits for this: a call that failed was retried by botocore already.
        left, error = self._batch_write(requests, attempts=_BATCH_ATTEMPTS, retry_errors=False)
        ids = {request["PutRequest"]["Item"]["connection_id"]["S"] for request in left}
        return [
            (error or _unprocessed("put")) if connection.connection_id in ids else None
            for connection in connections
        ]

    def deregister_batch(self, connection_ids: Sequence[str]) -> list[BaseException | None]:
        """Deregister several connections in one call; one outcome per id, in order."""
        if len(connection_ids) == 1 or self.tenant_limit:
            # With quotas, each delete must say whether it deleted, to count down once.
            return [_outcome(self.deregister, cid) for cid in connection_ids]
        failed = set(self.deregister_many(connection_ids))
        return [_unprocessed("delete") if cid in failed else None for cid in connection_ids]

    def _batch_delete(self, ids: list[str], attempts: int) -> list[str]:
        requests = [{"DeleteRequest": {"Key": {"connection_id": {"S": cid}}}} for cid in ids]
        left, _ = self._batch_write(requests, attempts=attempts, retry_errors=True)
        return [request["DeleteRequest"]["Key"]["connection_id"]["S"] for request in left]

    def _batch_write(
        self, requests: list[dict], *, attempts: int, retry_errors: bool
    ) -> tuple[list[dict], RegistryUnavailable | None]:
        """BatchWriteItem, 25 requests a call; what DynamoDB leaves unprocessed is retried
        with backoff (and failed calls too, if `retry_errors`), up to `attempts` calls.

        Returns the requests not carried out, and the last failure of a call, if any.
        """
        left: list[dict] = []
        error: RegistryUnavailable | None = None
        for start in range(0, len(requests), _BATCH_SIZE):
            chunk = requests[start : start + _BATCH_SIZE]
            for attempt in range(attempts):
                if attempt:
                    time.sleep(min(0.05 * 2 ** (attempt - 1), 1.0))
                with metrics.registry_call("batch_write_item") as call:
                    try:
                        response = self.client.batch_write_item(
                            RequestItems={self.table_name: chunk}
                        )
                    except (ClientError, BotoCoreError) as exc:
                        error = call.failed(_unavailable("batch_write_item", exc))
                        logger.warning(event("registry.batch_write_failed", error=exc))
                        if retry_errors:
                            continue
                        break
                chunk = response.get("UnprocessedItems", {}).get(self.table_name, [])
                if not chunk:
                    break
            left.extend(chunk)
        return left, error

    # --- reads (expired items are never returned) ---------------------------

    def get(self, connection_id: str) -> Connection | None:
        response = self._call(
            "get_item", Key={"connection_id": {"S": connection_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        connection = from_item(item)
        return None if connection.is_expired(self.clock()) else connection

    def for_tenant(
        self,
        tenant: str,
        *,
        deployment_id: str | None = None,
        connection_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Live connections of a tenant, narrowed by deployment and then type, in pages.

        Raises:
            ValueError: connection_type given without deployment_id.
            InvalidCursor: a cursor not issued for this tenant.
        """
        if connection_type is not None and deployment_id is None:
            raise ValueError("connection_type narrows a deployment: give deployment_id too")
        condition = "tenant = :tenant"
        values = {":tenant": {"S": tenant}}
        prefix = ""
        if deployment_id is not None:
            prefix = (
                f"{deployment_id}#"
                if connection_type is None
                else f"{deployment_id}#{connection_type}#"
            )
            condition += f" AND begins_with({_SCOPE_KEY}, :prefix)"
            values[":prefix"] = {"S": prefix}
        start = _decode_cursor(cursor, TENANT_INDEX, ("tenant", tenant), prefix) if cursor else None
        return self._live_page(TENANT_INDEX, condition, values, limit=limit, start=start)

    def instance_page(
        self, instance_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> Page:
        """Live connections held by one server process, in pages (connection id order).

        Raises:
            InvalidCursor: a cursor not issued for this instance.
        """
        start = (
            _decode_cursor(cursor, INSTANCE_INDEX, ("instance_id", instance_id), "")
            if cursor
            else None
        )
        return self._live_page(
            INSTANCE_INDEX,
            "instance_id = :instance",
            {":instance": {"S": instance_id}},
            limit=limit,
            start=start,
        )

    def _live_page(
        self, index: str, condition: str, values: dict, *, limit: int, start: dict | None
    ) -> Page:
        # ttl >= ceil(now) is exactly `not Connection.is_expired(now)` for a fractional now.
        values = {**values, ":now": {"N": str(math.ceil(self.clock()))}}
        found: list[Connection] = []
        while True:
            kwargs = {
                "IndexName": index,
                "KeyConditionExpression": condition,
                "FilterExpression": "#ttl >= :now",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": values,
                "Limit": limit - len(found),
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self._call("query", **kwargs)
            found.extend(from_item(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            # The filter runs after Limit: keep reading until the page is full or data ends.
            if not start or len(found) >= limit:
                break
        if start:
            start = {name: start[name] for name in _START_KEYS[index]}
        return Page(found, _encode_cursor(start) if start else None)

    def for_instance(
        self, instance_id: str, *, include_expired: bool = False
    ) -> Iterator[Connection]:
        """Every connection recorded as held by one server process."""
        kwargs = {
            "IndexName": INSTANCE_INDEX,
            "KeyConditionExpression": "instance_id = :instance",
            "ExpressionAttributeValues": {":instance": {"S": instance_id}},
        }
        while True:
            response = self._call("query", **kwargs)
            now = self.clock()
            for item in response.get("Items", []):
                connection = from_item(item)
                if include_expired or not connection.is_expired(now):
                    yield connection
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def counts(self, *, tenant: str | None = None) -> dict[str, dict[str, dict[str, int]]]:
        """Live connections counted as {tenant: {deployment_id: {connection_type: n}}}.

        For one tenant this is a Query of its index partition. For every tenant it is the
        registry's one Scan (DynamoDB cannot list an index's partition keys): it reads the
        whole table, projected to four attributes, so keep it to operator overviews.
        """
        now = str(math.ceil(self.clock()))
        kwargs = {
            "ProjectionExpression": "tenant, deployment_id, connection_type",
            "FilterExpression": "#ttl >= :now",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {":now": {"N": now}},
        }
        operation = "scan"
        if tenant is not None:
            operation = "query"
            kwargs.update(IndexName=TENANT_INDEX, KeyConditionExpression="tenant = :tenant")
            kwargs["ExpressionAttributeValues"][":tenant"] = {"S": tenant}
        counts: dict[str, dict[str, dict[str, int]]] = {}
        while True:
            response = self._call(operation, **kwargs)
            for item in response.get("Items", []):
                if "tenant" not in item:
                    continue  # not one of ours (the original server's items lack the fields)
                types = counts.setdefault(item["tenant"]["S"], {}).setdefault(
                    item["deployment_id"]["S"], {}
                )
                kind = item["connection_type"]["S"]
                types[kind] = types.get(kind, 0) + 1
            if "LastEvaluatedKey" not in response:
                return counts
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def expired_ids(self) -> Iterator[str]:
        """Ids of items past their TTL that DynamoDB has not deleted yet (a Scan)."""
        kwargs = {
            "ProjectionExpression": "connection_id",
            "FilterExpression": "#ttl < :now",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {":now": {"N": str(math.ceil(self.clock()))}},
        }
        while True:
            response = self._call("scan", **kwargs)
            for item in response.get("Items", []):
                yield item["connection_id"]["S"]
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # --- async twins: registrations and deregistrations coalesced ------------------

    async def aregister(self, connection: Connection) -> None:
        if self.tenant_limit:  # each registration is a transaction with the tenant's counter
            await self._async(self.register)(connection)
        else:
            await self._registrations.submit(connection)

    async def aderegister(self, connection_id: str) -> None:
        await self._deregistrations.submit(connection_id)

    # --- the table ------------------------------------------------------------

    def create_table(self, *, wait: bool = False, wait_seconds: float = 300) -> TableReport:
        """Create the table, its indexes and TTL; on an existing table add what is missing.

        Idempotent. Index creation on an existing table waits for each index, as DynamoDB
        builds one at a time.

        Raises:
            RegistryError: the table exists with another key schema, or TTL on another attribute.
            RegistryUnavailable: DynamoDB cannot be reached or refuses the call.
        """
        report = TableReport(self.table_name)
        description = self.describe_table()
        if description is None:
            try:
                self._create()
                report.created = True
            except RegistryUnavailable as exc:
                if exc.reason != "ResourceInUseException":
                    raise
                # Another process created it since our describe (which may lag behind a
                # CreateTable): check it as an existing table.
                description = self.describe_table() or self._wait_active(wait_seconds)
        if report.created:
            description = self._wait_active(wait_seconds) if wait else self.describe_table()
        else:
            keys = [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]]
            if keys != [("connection_id", "HASH")]:
                raise RegistryError(
                    f"table {self.table_name} exists with key schema {keys}, "
                    "expected connection_id as its only (hash) key"
                )
            existing = {i["IndexName"] for i in description.get("GlobalSecondaryIndexes", [])}
            for index in GLOBAL_SECONDARY_INDEXES:
                if index["IndexName"] not in existing:
                    self._wait_active(wait_seconds)
                    self._call(
                        "update_table",
                        AttributeDefinitions=ATTRIBUTE_DEFINITIONS,
                        GlobalSecondaryIndexUpdates=[{"Create": index}],
                    )
                    report.indexes_created.append(index["IndexName"])
            if wait:  # also an existing table that is still CREATING or UPDATING
                description = self._wait_active(wait_seconds)
            elif report.indexes_created:
                description = self.describe_table()
        report.status = description["TableStatus"] if description else "UNKNOWN"
        report.ttl_enabled_now = self._ensure_ttl()
        return report

    def describe_table(self) -> dict | None:
        try:
            return self._call("describe_table")["Table"]
        except RegistryUnavailable as exc:
            if (
                isinstance(exc.__cause__, ClientError)
                and exc.__cause__.response["Error"]["Code"] == "ResourceNotFoundException"
            ):
                return None
            raise

    def _create(self) -> None:
        self._call(
            "create_table",
            AttributeDefinitions=ATTRIBUTE_DEFINITIONS,
            KeySchema=[{"AttributeName": "connection_id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=GLOBAL_SECONDARY_INDEXES,
            BillingMode="PAY_PER_REQUEST",
        )

    def _wait_active(self, wait_seconds: float = 300) -> dict:
        deadline = time.monotonic() + wait_seconds
        while True:
            description = self.describe_table()
            indexes = (description or {}).get("GlobalSecondaryIndexes", [])
            if (
                description
                and description["TableStatus"] == "ACTIVE"
                and all(i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes)
            ):
                return description
            if time.monotonic() > deadline:
                raise RegistryUnavailable(
                    f"table {self.table_name} not active after {wait_seconds:.0f}s"
                )
            time.sleep(1)

    def _ensure_ttl(self) -> bool:
        """Enable TTL on `ttl` if it is off. Returns True when this call enabled it."""
        status = self._call("describe_time_to_live")["TimeToLiveDescription"]
        if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if status.get("AttributeName") != "ttl":
                # DynamoDB allows one TTL attribute: items would never expire on `ttl`.
                raise RegistryError(
                    f"table {self.table_name} has TTL on attribute "
                    f"{status.get('AttributeName')!r}, expected 'ttl'"
                )
            return False
        self._call(
            "update_time_to_live",
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
        )
        return True


ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": name, "AttributeType": "S"}
    for name in ("connection_id", "tenant", _SCOPE_KEY, "instance_id")
]
GLOBAL_SECONDARY_INDEXES = [
    {
        "IndexName": TENANT_INDEX,
        "KeySchema": [
            {"AttributeName": "tenant", "KeyType": "HASH"},
            {"AttributeName": _SCOPE_KEY, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
    {
        "IndexName": INSTANCE_INDEX,
        "KeySchema": [
            {"AttributeName": "instance_id", "KeyType": "HASH"},
            {"AttributeName": "connection_id", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
]
