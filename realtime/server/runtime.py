"""The server process's runtime: its identity and every collaborator that lives as long as it.

One place builds it (`runtime()`, on first use, from settings) and one place resets it
(`reset()`: when a setting it was built from changes, in a forked child, and in tests), so
that no module keeps a process-wide object of its own with its own reset rule.
"""

import asyncio
import os
import secrets
import socket
import threading

from django.conf import settings
from django.core.signals import setting_changed

import realtime
from realtime.core.limits import AddressGate
from realtime.registry import ConnectionRegistry
from realtime.registry.backends import registry_from_settings
from realtime.server.fleet import Membership
from realtime.server.inbox import Inbox
from realtime.server.keeper import TtlKeeper
from realtime.server.timeouts import TimeoutSweeper

__all__ = ["Runtime", "install", "new_instance_id", "reset", "runtime"]

# What `Runtime.from_settings` reads: a change to one of these (tests) builds a new runtime.
_BUILT_FROM_PREFIXES = ("DYNAMODB_", "AWS_")
_BUILT_FROM = frozenset(
    {
        "REGISTRY_ENABLED",
        "WS_TENANT_MAX_CONNECTIONS",
        "CONNECTION_TTL_SECONDS",
        "TTL_REFRESH_SECONDS",
        "WS_IDLE_TIMEOUT_SECONDS",
        "WS_MAX_LIFETIME_SECONDS",
        "INSTANCE_HEARTBEAT_SECONDS",
        "INSTANCE_LEASE_SECONDS",
        "WS_ADDRESS_MAX_CONNECTIONS",
        "WS_ADDRESS_HANDSHAKE_RATE",
        "WS_ADDRESS_HANDSHAKE_BURST",
    }
)


def new_instance_id() -> str:
    """A server process's id in the registry: host name, pid and random bits, so that a
    restarted process with a reused pid is a new instance."""
    pid = os.getpid()
    return f"{socket.gethostname()[:64]}-{pid}-{secrets.token_hex(4)}"


class Runtime:
    """This process's registry, fleet membership (its instance id and lease), keeper, timeout
    sweeper, inbox, draining flag, and what it counts per client address.

    Args:
        registry: the connection registry (a backend of realtime.registry).
        instance_id: this process's id in the registry; a new one when omitted.
    """

    def __init__(self, *, registry: ConnectionRegistry, instance_id: str | None = None):
        instance_id = instance_id or new_instance_id()
        self.registry = registry
        self.keeper = TtlKeeper(
            registry=registry,
            ttl_seconds=settings.CONNECTION_TTL_SECONDS,
            refresh_seconds=settings.TTL_REFRESH_SECONDS,
            instance=instance_id,
        )
        self.membership = Membership(
            registry=registry,
            instance_id=instance_id,
            held_count=self.keeper.__len__,
            heartbeat_seconds=settings.INSTANCE_HEARTBEAT_SECONDS,
            lease_seconds=settings.INSTANCE_LEASE_SECONDS,
            version=realtime.__version__,
            on_fenced=self._fenced,
        )
        self.sweeper = TimeoutSweeper(
            connections=self.keeper.holders,
            idle_seconds=settings.WS_IDLE_TIMEOUT_SECONDS,
            lifetime_seconds=settings.WS_MAX_LIFETIME_SECONDS,
        )
        # Requests reach the connections the keeper holds, and wait for those being registered.
        self.inbox = Inbox(find=self.keeper.holder, registering=self.keeper.is_claimed)
        self.addresses = AddressGate(
            max_connections=settings.WS_ADDRESS_MAX_CONNECTIONS,
            handshake_rate=settings.WS_ADDRESS_HANDSHAKE_RATE,
            handshake_burst=settings.WS_ADDRESS_HANDSHAKE_BURST,
        )
        # Set once shutdown begins: /readyz answers 503 and new handshakes are refused. A
        # threading.Event, so that a signal handler or a registry thread may set or read it.
        self._draining = threading.Event()

    @classmethod
    def from_settings(cls) -> "Runtime":
        return cls(registry=registry_from_settings(settings))

    @property
    def instance_id(self) -> str:
        """This process's id in the registry (a new one after it was fenced)."""
        return self.membership.instance_id

    def start(self) -> None:
        """Start the background work that runs whether or not connections are open (the
        fleet heartbeat), in the running event loop. Idempotent."""
        self.membership.ensure_running()

    async def _fenced(self, old: str, new: str) -> None:
        # Every socket held under the old id is closed (1013) and its item deleted if any is
        # left; connections from now on are registered under the new id, once it has a lease.
        self.keeper.instance = new
        holders = self.keeper.holders()
        await asyncio.gather(*(holder.fenced() for holder in holders), return_exceptions=True)

    def start_draining(self) -> None:
        """Mark this process as draining, for good (a draining process exits). Idempotent."""
        self._draining.set()

    def is_draining(self) -> bool:
        return self._draining.is_set()


_current: Runtime | None = None


def runtime() -> Runtime:
    """This process's runtime, built from settings on first use."""
    global _current
    if _current is None:
        _current = Runtime.from_settings()
    return _current


def install(chosen: Runtime | None) -> None:
    """Make `chosen` this process's runtime (tests); None builds a new one on next use."""
    global _current
    _current = chosen


def reset() -> None:
    install(None)


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting in _BUILT_FROM or setting.startswith(_BUILT_FROM_PREFIXES):
        reset()


setting_changed.connect(_on_setting_changed)
# A forked worker is another instance: it must not share its parent's id or objects.
os.register_at_fork(after_in_child=reset)
