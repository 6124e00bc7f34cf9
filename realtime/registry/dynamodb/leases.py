"""Instance leases in the registry table: write, renew, read, take over, release.

A lease item's key is `instance#<instance id>` (core/leases.py), which no connection id or
quota counter can be. It carries `tenant` = `#instances` and `scope_key` = the instance id,
so the whole fleet is one Query of the tenant index's `#instances` partition, which no tenant
can be. It has no `instance_id` attribute, so the instance index (a process's connections)
never lists it, and no `deployment_id`, so connection counts skip it. Its `ttl` moves with
every renewal: a lease whose whole fleet died goes the way of its items.

Every write but the first is conditional: a renewal on the lease still being the holder's
and live, a takeover on the counter the taker watched, a reaper's bump and its final delete
on the reaper being itself. What a failed condition means is the caller's to say.
"""

from botocore.exceptions import ClientError

from realtime.core.leases import FLEET_PARTITION, Lease, LeaseState, lease_key
from realtime.registry.dynamodb.client import Table
from realtime.registry.dynamodb.schema import PARTITION_KEY, SCOPE_KEY, TENANT_INDEX, TTL_ATTRIBUTE
from realtime.registry.errors import LeaseLost, RegistryError

__all__ = [
    "acquire",
    "bump_reaping",
    "get",
    "list_fleet",
    "release",
    "renew",
    "take_over",
]

_NAMES = {"#state": "state", "#ttl": TTL_ATTRIBUTE}
_LIVE = {"S": LeaseState.LIVE.value}
_REAPING = {"S": LeaseState.REAPING.value}
_ONE = {"N": "1"}


def _key(instance_id: str) -> dict:
    return {PARTITION_KEY: {"S": lease_key(instance_id)}}


def to_item(lease: Lease, *, expires_at: int) -> dict:
    item = {
        **_key(lease.instance_id),
        "tenant": {"S": FLEET_PARTITION},
        SCOPE_KEY: {"S": lease.instance_id},
        "lease_of": {"S": lease.instance_id},
        "host": {"S": lease.host},
        "pid": {"N": str(lease.pid)},
        "started_at": {"S": lease.started_at},
        "version": {"S": lease.version},
        "renewals": {"N": str(lease.renewals)},
        "renewed_at": {"N": repr(lease.renewed_at)},
        "state": {"S": lease.state.value},
        "connections": {"N": str(lease.connections)},
        TTL_ATTRIBUTE: {"N": str(expires_at)},
    }
    if lease.reaper:
        item["reaper"] = {"S": lease.reaper}
    return item


def from_item(item: dict) -> Lease:
    return Lease(
        instance_id=item["lease_of"]["S"],
        host=item.get("host", {}).get("S", ""),
        pid=int(item.get("pid", {}).get("N", "0")),
        started_at=item.get("started_at", {}).get("S", ""),
        version=item.get("version", {}).get("S", ""),
        renewals=int(item["renewals"]["N"]),
        renewed_at=float(item.get("renewed_at", {}).get("N", "0")),
        state=LeaseState(item["state"]["S"]),
        connections=int(item.get("connections", {}).get("N", "0")),
        reaper=item.get("reaper", {}).get("S", ""),
    )


def acquire(table: Table, lease: Lease, *, expires_at: int) -> None:
    """Write a new instance's lease. Instance ids are new at every start: never overwrites.

    Raises:
        RegistryError: a lease with this id exists (it never does for a fresh id).
        RegistryUnavailable: DynamoDB failed.
    """
    try:
        table.api_call(
            "put_item",
            Item=to_item(lease, expires_at=expires_at),
            ConditionExpression=f"attribute_not_exists({PARTITION_KEY})",
        )
    except ClientError as exc:
        raise RegistryError(f"a lease for instance {lease.instance_id} exists") from exc


def renew(
    table: Table, instance_id: str, *, connections: int, renewed_at: float, expires_at: int
) -> int:
    """Bump the holder's own live lease. Returns its new counter.

    Raises:
        LeaseLost: the lease was taken over or is gone.
        RegistryUnavailable: DynamoDB failed (the lease may or may not have moved).
    """
    try:
        response = table.api_call(
            "update_item",
            Key=_key(instance_id),
            UpdateExpression=(
                "SET renewals = renewals + :one, renewed_at = :at, connections = :n, #ttl = :ttl"
            ),
            ConditionExpression="lease_of = :me AND #state = :live",
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues={
                ":one": _ONE,
                ":at": {"N": repr(renewed_at)},
                ":n": {"N": str(connections)},
                ":ttl": {"N": str(expires_at)},
                ":me": {"S": instance_id},
                ":live": _LIVE,
            },
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as exc:
        raise LeaseLost(f"the lease of instance {instance_id} was taken over") from exc
    return int(response["Attributes"]["renewals"]["N"])


def list_fleet(table: Table) -> list[Lease]:
    """Every lease in the table, oldest instance first (one Query, paged)."""
    kwargs = {
        "IndexName": TENANT_INDEX,
        "KeyConditionExpression": "tenant = :fleet",
        "ExpressionAttributeValues": {":fleet": {"S": FLEET_PARTITION}},
    }
    found = []
    while True:
        response = table.api_call("query", **kwargs)
        found.extend(from_item(item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return sorted(found, key=lambda lease: (lease.started_at, lease.instance_id))
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def get(table: Table, instance_id: str) -> Lease | None:
    """One instance's lease, read consistently, or None."""
    item = table.api_call("get_item", Key=_key(instance_id), ConsistentRead=True).get("Item")
    return None if item is None else from_item(item)


def take_over(table: Table, lease: Lease, *, reaper: str) -> int | None:
    """Claim a lapsed lease for reaping, if its counter is still the one watched.

    Returns the new counter, or None when the condition failed (it was renewed, or another
    survivor claimed it first).
    """
    try:
        response = table.api_call(
            "update_item",
            Key=_key(lease.instance_id),
            UpdateExpression="SET renewals = renewals + :one, #state = :reaping, reaper = :me",
            ConditionExpression="renewals = :seen AND #state = :was",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":one": _ONE,
                ":reaping": _REAPING,
                ":me": {"S": reaper},
                ":seen": {"N": str(lease.renewals)},
                ":was": {"S": lease.state.value},
            },
            ReturnValues="UPDATED_NEW",
        )
    except ClientError:
        return None
    return int(response["Attributes"]["renewals"]["N"])


def bump_reaping(table: Table, instance_id: str, *, reaper: str) -> int | None:
    """The reaper's sign of life on the lease it reaps. None when it is no longer its."""
    try:
        response = table.api_call(
            "update_item",
            Key=_key(instance_id),
            UpdateExpression="SET renewals = renewals + :one",
            ConditionExpression="reaper = :me AND #state = :reaping",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":one": _ONE, ":me": {"S": reaper}, ":reaping": _REAPING},
            ReturnValues="UPDATED_NEW",
        )
    except ClientError:
        return None
    return int(response["Attributes"]["renewals"]["N"])


def release(table: Table, instance_id: str, *, reaper: str | None) -> bool:
    """Delete a lease: the holder's own live one (reaper None), or one `reaper` reaped.
    Returns whether it was deleted."""
    if reaper is None:
        condition = "lease_of = :me AND #state = :live"
        values = {":me": {"S": instance_id}, ":live": _LIVE}
    else:
        condition = "reaper = :me AND #state = :reaping"
        values = {":me": {"S": reaper}, ":reaping": _REAPING}
    try:
        table.api_call(
            "delete_item",
            Key=_key(instance_id),
            ConditionExpression=condition,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )
    except ClientError:
        return False
    return True
