"""Connection: one registry record, as the server and operators see it."""

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from realtime.core.handshake import ConnectionRequest

__all__ = [
    "CLIENT_FIELDS",
    "FIELDS",
    "OPERATOR_FIELDS",
    "Connection",
    "is_connection_id",
    "isoformat",
]


def isoformat(epoch_seconds: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, e.g. 2026-01-31T12:00:00.000Z."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def is_connection_id(value: str) -> bool:
    """Whether `value` could be a connection id: ids are `str(uuid.uuid4())`, canonical form.

    Anything else was never issued, so callers answer "not found" without asking DynamoDB
    (which would also refuse keys over 2048 bytes with an error, not with "not found").
    """
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Connection:
    """A live connection's registry record.

    `expires_at` is the item's DynamoDB `ttl` (epoch seconds): the moment after which the
    record counts as an orphan if nobody refreshed it. `instance_id` and `channel_name` say
    which server process holds the socket and how to reach it through the channel layer.
    """

    connection_id: str
    tenant: str
    deployment_id: str
    connection_type: str
    connected_at: str  # ISO 8601 UTC, as stored
    expires_at: int
    instance_id: str
    channel_name: str
    client_addr: str

    @classmethod
    def open(
        cls,
        request: ConnectionRequest,
        *,
        now: float,
        ttl_seconds: int,
        instance_id: str,
        channel_name: str,
        client_addr: str,
    ) -> "Connection":
        """A new record with a fresh, random, never-reused id (uuid4: 122 random bits)."""
        return cls(
            connection_id=str(uuid.uuid4()),
            tenant=request.tenant,
            deployment_id=request.deployment_id,
            connection_type=request.connection_type,
            connected_at=isoformat(now),
            expires_at=int(now) + ttl_seconds,
            instance_id=instance_id,
            channel_name=channel_name,
            client_addr=client_addr,
        )

    def is_expired(self, now: float) -> bool:
        return self.expires_at < now

    def public_fields(self) -> dict:
        """The fields a client sees about its own connection (`connected`, `info`)."""
        return self._view(CLIENT_FIELDS)

    def operator_fields(self) -> dict:
        """The fields operators and services see (the API's JSON, `list_connections --json`)."""
        return self._view(OPERATOR_FIELDS)

    def _view(self, names: tuple[str, ...]) -> dict:
        view = {name: getattr(self, name) for name in names}
        if "expires_at" in view:
            view["expires_at"] = isoformat(self.expires_at)
        return view


# The one list of a record's fields, in order: the registry's item codec, the API's JSON and
# its OpenAPI schema, and the operator command's columns derive from it (or a test holds
# them to it).
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Connection))
# What operators see: all but the channel-layer address, of no use outside the servers.
OPERATOR_FIELDS = tuple(name for name in FIELDS if name != "channel_name")
# What a client sees of its own connection: not where it is held.
CLIENT_FIELDS = tuple(
    name for name in OPERATOR_FIELDS if name not in ("instance_id", "client_addr")
)
