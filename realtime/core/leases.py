"""Instance leases: the rules that decide which server instances of the fleet are alive.

Each server process holds a lease item in the registry and renews it every heartbeat,
bumping a renewal counter. A lease has lapsed when its counter stayed the same for a whole
lease duration, as one observer sees it on its own monotonic clock: no clock of another host
is ever compared with this one's, so clock skew between hosts cannot make a live instance look
dead. (The holder's wall-clock time of its last renewal is stored too, for people to read; it
is never used to decide.)

An observer believes only what it saw while it was itself healthy: if its own renewal failed,
or it went longer than two heartbeats without a round (it was stalled, or DynamoDB was down
for everyone), it starts its observations afresh. So a fleet-wide outage, after which every
counter resumes at once, never makes anyone look dead; a single instance cut off from
DynamoDB while the others are not does.

Pure code, no I/O: the server's heartbeat (realtime/server/fleet.py) reads the leases and
acts on the decisions made here, and tests drive these rules with a clock of their own.
"""

import enum
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from realtime.core.connection import isoformat

__all__ = [
    "FLEET_PARTITION",
    "INSTANCE_FIELDS",
    "LEASE_KEY_PREFIX",
    "Lease",
    "LeaseState",
    "LeaseWatch",
    "is_instance_id",
    "lease_key",
]

# Lease items share the registry table with connections. Their key cannot be a connection's
# (a uuid) or a quota counter's ("quota#..."), and their index partition cannot be a tenant's:
# tenants are [A-Za-z0-9._-], so "#" never starts one.
LEASE_KEY_PREFIX = "instance#"
FLEET_PARTITION = "#instances"


# Instance ids are "host-pid-random" (runtime.new_instance_id); host names are visible ASCII.
_INSTANCE_ID = re.compile(r"[\x21-\x7e]{1,256}")


def is_instance_id(value: str) -> bool:
    """Whether `value` could be an instance id (what operators may filter and purge by)."""
    return _INSTANCE_ID.fullmatch(value) is not None


def lease_key(instance_id: str) -> str:
    return f"{LEASE_KEY_PREFIX}{instance_id}"


class LeaseState(enum.Enum):
    LIVE = "live"  # renewed by its holder
    REAPING = "reaping"  # taken over by a survivor, which is deleting the holder's items


@dataclass(frozen=True, slots=True)
class Lease:
    """One server instance's lease, as stored."""

    instance_id: str
    host: str
    pid: int
    started_at: str  # ISO 8601 UTC
    version: str
    renewals: int  # bumped by every renewal, and by the reaper while it reaps
    renewed_at: float  # the writer's epoch seconds: shown to people, never compared
    state: LeaseState
    connections: int  # held by the instance at its last renewal
    reaper: str = ""  # the survivor deleting its items, once REAPING

    @property
    def is_live(self) -> bool:
        return self.state is LeaseState.LIVE

    def operator_fields(self) -> dict:
        """The instance as operators see it (GET /api/instances, list_instances --json).

        `last_renewal` is the holder's own clock: what it said, not something compared."""
        return {
            "instance_id": self.instance_id,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at,
            "last_renewal": isoformat(self.renewed_at),
            "state": self.state.value,
            "connections": self.connections,
            "version": self.version,
        }


# What operators see of an instance, in order (the API's Instance schema is held to it).
INSTANCE_FIELDS = (
    "instance_id",
    "host",
    "pid",
    "started_at",
    "last_renewal",
    "state",
    "connections",
    "version",
)


@dataclass(slots=True)
class _Seen:
    renewals: int
    since: float  # observer's monotonic seconds when this counter value was first seen


class LeaseWatch:
    """Decides, from successive readings of the fleet's leases, which have lapsed.

    Args:
        own_instance: this observer's instance id (its own lease is never judged here).
        lease_seconds: how long a counter must stay the same for its lease to have lapsed.
        heartbeat_seconds: how often rounds happen; a round more than two heartbeats after
            the previous one starts the observations afresh.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        *,
        own_instance: str,
        lease_seconds: float,
        heartbeat_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        if lease_seconds < 2 * heartbeat_seconds:
            raise ValueError("a lease must last at least two heartbeats")
        self.own_instance = own_instance
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._last_round: float | None = None

    def forget(self) -> None:
        """Start afresh: what was seen before cannot be trusted (this instance failed)."""
        self._seen.clear()
        self._last_round = None

    def observe(self, leases: Iterable[Lease], *, own_renewal_ok: bool) -> list[Lease]:
        """Take one reading of the fleet. Returns the other instances' leases that lapsed.

        Args:
            leases: every lease item, as read this round.
            own_renewal_ok: whether this observer renewed its own lease this round.
        """
        now = self.clock()
        if not own_renewal_ok:
            self.forget()
            return []
        if self._last_round is None or now - self._last_round > 2 * self.heartbeat_seconds:
            self._seen.clear()  # a fresh baseline: nothing can have lapsed since it
        self._last_round = now
        lapsed = []
        present = set()
        for lease in leases:
            if lease.instance_id == self.own_instance:
                continue
            present.add(lease.instance_id)
            seen = self._seen.get(lease.instance_id)
            if seen is None or seen.renewals != lease.renewals:
                self._seen[lease.instance_id] = _Seen(lease.renewals, now)
            elif now - seen.since >= self.lease_seconds:
                lapsed.append(lease)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return lapsed

    def claimed(self, instance_id: str, renewals: int) -> None:
        """This observer took the lease over, bumping its counter to `renewals`."""
        self._seen[instance_id] = _Seen(renewals, self.clock())
