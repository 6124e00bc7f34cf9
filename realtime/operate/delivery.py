"""Acting on connections wherever they are: send a message, broadcast, disconnect.

The registry says which channel reaches a connection; the Channels channel layer carries the
request there (channels_redis across processes and machines, in-memory within one process).
A request to one connection waits for the holding consumer's acknowledgement, so callers learn
whether it arrived. Silence is not death: a holder that does not acknowledge in time while its
lease is live is slow (load, a pause, a slow Redis), and the caller gets 504 with the item
left alone. Only a holder whose lease has lapsed (or is gone), or a live holder answering that
it does not hold the connection, makes the connection gone (410), and its item is removed.

Services raise the exceptions below; the API and the operator pages map them to HTTP statuses.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from realtime import metrics
from realtime.core import close_codes
from realtime.core.connection import Connection
from realtime.core.logs import event
from realtime.registry import RegistryError
from realtime.server.inbox import BROADCAST, DISCONNECT, MESSAGE, NACK
from realtime.server.runtime import runtime

__all__ = [
    "ConnectionGone",
    "ConnectionNotFound",
    "DeliveryError",
    "DeliveryUnavailable",
    "HolderNotResponding",
    "connection_disconnect",
    "connection_send",
    "connections_broadcast",
]

logger = logging.getLogger(__name__)


_BROADCAST_PAGE = 500
_BROADCAST_CONCURRENCY = 100


class DeliveryError(Exception):
    """A request could not be carried out; `status` is the HTTP status that says why."""

    status = 500


class ConnectionNotFound(DeliveryError):
    """No live connection has this id (never did, or it was deregistered)."""

    status = 404


class ConnectionGone(DeliveryError):
    """The connection was registered, but its server is dead (its lease lapsed or is gone) or
    says it does not hold it: it is gone, and its item was removed."""

    status = 410


class HolderNotResponding(DeliveryError):
    """The holding server is alive (its lease is live) but did not acknowledge in time. The
    connection may well be open and stays registered: try again."""

    status = 504


class DeliveryUnavailable(DeliveryError):
    """The channel layer (or the registry) cannot carry the request now: try again later."""

    status = 503


_OUTCOMES = {
    ConnectionNotFound: "not_found",
    ConnectionGone: "gone",
    HolderNotResponding: "not_responding",
}


async def connection_send(connection_id: str, data) -> Connection:
    """Deliver `data` to one connection as a `message` frame; returns its record.

    Raises:
        ConnectionNotFound, ConnectionGone, DeliveryUnavailable.
    """
    async with _counted("send"):
        record = await _live_record(connection_id)
        await _request(record, {"type": MESSAGE, "data": data})
    return record


async def connection_disconnect(
    connection_id: str, *, code: int = close_codes.CLOSED_BY_OPERATOR
) -> Connection:
    """Close one connection with `code` (4000-4999); its consumer deregisters it.

    Raises:
        ConnectionNotFound, ConnectionGone, DeliveryUnavailable.
    """
    async with _counted("disconnect"):
        record = await _live_record(connection_id)
        await _request(record, {"type": DISCONNECT, "code": code})
    return record


@contextlib.asynccontextmanager
async def _counted(action: str):
    try:
        yield
    except DeliveryError as exc:
        metrics.delivery_finished(action=action, outcome=_OUTCOMES.get(type(exc), "unavailable"))
        raise
    metrics.delivery_finished(action=action, outcome="delivered")


async def connections_broadcast(
    *, tenant: str, deployment_id: str | None = None, connection_type: str | None = None, data
) -> int:
    """Send `data` to every live connection of a tenant [, deployment [, type]].

    Fire and forget, one channel-layer message per connection: returns how many connections
    were targeted. Connections that open during the broadcast may or may not receive it.

    Raises:
        DeliveryUnavailable: the registry or the channel layer failed before anything was sent.
    """
    try:
        targeted = await _broadcast(tenant, deployment_id, connection_type, data)
    except DeliveryUnavailable:
        metrics.broadcast_failed()
        raise
    metrics.broadcast_finished(targeted)
    return targeted


async def _broadcast(tenant, deployment_id, connection_type, data) -> int:
    registry = runtime().registry
    layer = _layer()
    targeted = 0
    cursor = None
    while True:
        page = await _registry_call(
            registry.afor_tenant(
                tenant,
                deployment_id=deployment_id,
                connection_type=connection_type,
                limit=_BROADCAST_PAGE,
                cursor=cursor,
            )
        )
        targeted += await _send_all(layer, page.connections, data)
        if page.cursor is None:
            return targeted
        cursor = page.cursor


async def _send_all(layer, connections: Iterable[Connection], data) -> int:
    # One message per instance inbox, naming its connections: a broadcast to ten thousand
    # connections on three instances is three channel-layer messages, not ten thousand.
    by_inbox: dict[str, list[str]] = {}
    for connection in connections:
        if _reachable(layer, connection):
            by_inbox.setdefault(connection.channel_name, []).append(connection.connection_id)
    results = await asyncio.gather(
        *(
            layer.send(inbox, {"type": BROADCAST, "connection_ids": ids, "data": data})
            for inbox, ids in by_inbox.items()
        ),
        return_exceptions=True,
    )
    sent = 0
    for (inbox, ids), result in zip(by_inbox.items(), results, strict=True):
        if isinstance(result, ChannelFull):
            # One instance's full inbox must not fail everyone else's broadcast.
            logger.warning(event("delivery.inbox_full", channel=inbox, connections=len(ids)))
        elif isinstance(result, Exception):
            raise _layer_failed(result) from result
        else:
            sent += len(ids)
    return sent


async def _live_record(connection_id: str) -> Connection:
    record = await _registry_call(runtime().registry.aget(connection_id))
    if record is None:
        raise ConnectionNotFound(f"no live connection {connection_id}")
    return record


async def _request(record: Connection, message: dict) -> None:
    """Send to the holding consumer and wait for its acknowledgement."""
    layer = _layer()
    if not _reachable(layer, record):
        raise DeliveryUnavailable(
            f"connection {record.connection_id} is held by instance {record.instance_id}, "
            "which the in-memory channel layer cannot reach: set REDIS_URL on every instance"
        )
    try:
        reply_channel = await layer.new_channel()
        request = {**message, "connection_id": record.connection_id, "ack": reply_channel}
        await layer.send(record.channel_name, request)
        async with asyncio.timeout(settings.DELIVERY_TIMEOUT_SECONDS):
            answer = await layer.receive(reply_channel)
    except TimeoutError:
        await _judge_silence(record)
    except ChannelFull:
        raise DeliveryUnavailable(
            f"connection {record.connection_id} has too many undelivered messages"
        ) from None
    except (OSError, RedisError) as exc:  # the layer's own errors, when it is channels_redis
        raise _layer_failed(exc) from exc
    if answer["type"] == NACK:
        # Its instance is alive and does not hold it: the item outlived its connection.
        await _forget_orphan(record)
        raise ConnectionGone(f"connection {record.connection_id} is no longer open")


async def _judge_silence(record: Connection) -> None:
    """The holder did not acknowledge in time: slow if its lease is live, dead otherwise.

    Raises:
        HolderNotResponding: the holder is alive; the item stays.
        ConnectionGone: the holder is dead; the item was removed.
        DeliveryUnavailable: the registry cannot say.
    """
    lease = await _registry_call(runtime().registry.alease(record.instance_id))
    if lease is not None and lease.is_live:
        raise HolderNotResponding(
            f"instance {record.instance_id}, which holds connection {record.connection_id}, is "
            f"alive but did not acknowledge within {settings.DELIVERY_TIMEOUT_SECONDS}s; "
            "the connection stays registered: try again"
        )
    await _forget_orphan(record)
    raise ConnectionGone(
        f"connection {record.connection_id} is gone: its instance {record.instance_id} is dead"
    )


async def _forget_orphan(record: Connection) -> None:
    # Only a socket's own consumer deregisters it; an item nobody answers for is an orphan.
    logger.warning(
        event(
            "delivery.orphan_removed",
            connection_id=record.connection_id,
            instance_id=record.instance_id,
        )
    )
    try:
        await runtime().registry.aderegister(record.connection_id)
    except RegistryError as exc:  # left to TTL, like any failed deregistration
        logger.warning(
            event("registry.deregister_failed", connection_id=record.connection_id, error=exc)
        )


def _layer_failed(exc: BaseException) -> DeliveryUnavailable:
    # The answer names the kind of failure; the log has the rest. A channel layer's messages
    # carry internal addresses ("Error 111 connecting to 10.0.3.7:6379") that callers of the
    # API have no business seeing.
    logger.warning(event("delivery.channel_layer_failed", error=exc))
    return DeliveryUnavailable(f"the channel layer is unavailable ({type(exc).__name__})")


def _layer():
    layer = get_channel_layer()
    if layer is None:
        raise DeliveryUnavailable("no channel layer is configured")
    return layer


def _reachable(layer, record: Connection) -> bool:
    return (
        not isinstance(layer, InMemoryChannelLayer) or record.instance_id == runtime().instance_id
    )


async def _registry_call(awaitable):
    try:
        return await awaitable
    except RegistryError as exc:
        raise DeliveryUnavailable("the connection registry is unavailable") from exc
