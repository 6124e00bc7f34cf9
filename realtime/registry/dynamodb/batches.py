"""BatchWriteItem: many puts or deletes in few calls, unprocessed requests retried.

A batch call carries up to 25 requests. DynamoDB may carry out only some of them (it says
which it left in UnprocessedItems); those are sent again after a backoff. Batch puts cannot
carry a condition: they serve coalesced registrations, whose ids are uuid4s this server
made (docs/registry.md, "Writes").
"""

import logging
import time
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from realtime import metrics
from realtime.core.connection import Connection
from realtime.core.logs import event
from realtime.registry.dynamodb.client import Table, unavailable
from realtime.registry.dynamodb.codec import to_item
from realtime.registry.errors import RegistryUnavailable

__all__ = ["BATCH_SIZE", "PUT_ATTEMPTS", "delete_all", "put_all", "unprocessed", "write_all"]

# The backend's one logger: operators filter its events by the package's name.
logger = logging.getLogger(__package__)

BATCH_SIZE = 25  # BatchWriteItem's limit
# Calls per coalesced registration batch. Registration waits for it, so it gets fewer
# retries than a sweep's deletions: a client should hear 1013 within a couple of seconds.
PUT_ATTEMPTS = 2


def unprocessed(kind: str) -> RegistryUnavailable:
    """The failure of a `kind` ("put", "delete") that DynamoDB left unprocessed."""
    return RegistryUnavailable(f"DynamoDB batch_write_item left the {kind}", reason="unprocessed")


def put_all(table: Table, connections: Sequence[Connection]) -> list[RegistryUnavailable | None]:
    """Write the connections' items in batches; one outcome per connection, in order."""
    requests = [{"PutRequest": {"Item": to_item(connection)}} for connection in connections]
    # A client waits for this: a call that failed was retried by botocore already.
    left, error = write_all(table, requests, attempts=PUT_ATTEMPTS, retry_errors=False)
    ids = {request["PutRequest"]["Item"]["connection_id"]["S"] for request in left}
    return [
        (error or unprocessed("put")) if connection.connection_id in ids else None
        for connection in connections
    ]


def delete_all(table: Table, ids: list[str], attempts: int) -> list[str]:
    """Delete the items of `ids` (each id once) in batches. Returns the ids left undeleted."""
    requests = [{"DeleteRequest": {"Key": {"connection_id": {"S": cid}}}} for cid in ids]
    left, _ = write_all(table, requests, attempts=attempts, retry_errors=True)
    return [request["DeleteRequest"]["Key"]["connection_id"]["S"] for request in left]


def write_all(
    table: Table, requests: list[dict], *, attempts: int, retry_errors: bool
) -> tuple[list[dict], RegistryUnavailable | None]:
    """BatchWriteItem, 25 requests a call; what DynamoDB leaves unprocessed is retried
    with backoff (and failed calls too, if `retry_errors`), up to `attempts` calls.

    Returns the requests not carried out, and the last failure of a call, if any.
    """
    left: list[dict] = []
    error: RegistryUnavailable | None = None
    for start in range(0, len(requests), BATCH_SIZE):
        chunk = requests[start : start + BATCH_SIZE]
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(0.05 * 2 ** (attempt - 1), 1.0))
            # Not `Table.api_call`: a failed call here is retried or reported per request,
            # never raised.
            with metrics.registry_call("batch_write_item") as call:
                try:
                    response = table.client.batch_write_item(RequestItems={table.name: chunk})
                except (ClientError, BotoCoreError) as exc:
                    error = call.failed(unavailable("batch_write_item", exc))
                    logger.warning(event("registry.batch_write_failed", error=exc))
                    if retry_errors:
                        continue
                    break
            chunk = response.get("UnprocessedItems", {}).get(table.name, [])
            if not chunk:
                break
        left.extend(chunk)
    return left, error
