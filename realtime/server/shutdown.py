"""Graceful shutdown: stop taking connections, close every client with 1001, deregister.

Called once by the server's shutdown hook (adapters/daphne.py under daphne,
adapters/lifespan.py under uvicorn). From the first moment, /readyz answers 503 and new
handshakes get 1013 `draining`. The open connections are then closed with 1001 a slice at a
time, spread evenly over DRAIN_SPREAD_SECONDS and in random order: the clients of a restarted
instance reconnect to the others at a steady rate instead of all in the same second, and a
large tenant's clients are spread over the window like everyone else's (its index partition
takes their registrations a slice at a time, docs/capacity.md). Each slice's items are
deleted in batches as soon as it is closed, so that a reconnected client is never listed (or
counted against its tenant's quota) twice for long.

The whole drain is bounded by DRAIN_SECONDS: items still registered when the bound runs out
are left to TTL, logged and counted, so that an orchestrator's kill timeout is never the
thing that ends the process. The lease goes last, and only if nothing was left behind;
otherwise it lapses and a survivor reaps the rest within a lease.
"""

import asyncio
import logging
import math
import random
from collections.abc import Sequence

from django.conf import settings

from realtime import metrics
from realtime.core.connection import Connection
from realtime.core.logs import event
from realtime.registry import RegistryError
from realtime.server.runtime import runtime

__all__ = ["TICK_SECONDS", "close_schedule", "drain"]

logger = logging.getLogger(__name__)

# The spread's resolution: one slice of connections closed every tick at most. Finer would
# only add wake-ups; a tenth of a second is far below what a client's reconnect takes.
TICK_SECONDS = 0.1


def close_schedule(
    count: int, spread_seconds: float, tick_seconds: float = TICK_SECONDS
) -> list[tuple[float, int]]:
    """When to close how many of `count` connections, spread evenly over `spread_seconds`.

    Returns (seconds after the drain began, connections closed by then) pairs, in order; the
    last one closes the last connection, at most `spread_seconds` after the first. A spread of
    0 closes every connection at once, and there is never more than one slice per tick or
    per connection.
    """
    if count <= 0:
        return []
    slices = max(1, min(count, math.floor(spread_seconds / tick_seconds)))
    step = spread_seconds / slices
    return [(i * step, math.ceil(count * (i + 1) / slices)) for i in range(slices)]


async def drain() -> None:
    rt = runtime()
    rt.start_draining()  # /readyz answers 503 and new handshakes are refused
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + settings.DRAIN_SECONDS
    holders = rt.keeper.holders()
    random.shuffle(holders)
    logger.info(
        event(
            "server.draining",
            connections=len(holders),
            spread_seconds=settings.DRAIN_SPREAD_SECONDS,
        )
    )
    deletions: dict[asyncio.Task, list[str]] = {}
    closed = 0
    begin = 0
    for offset, end in close_schedule(len(holders), settings.DRAIN_SPREAD_SECONDS):
        await asyncio.sleep(started + offset - loop.time())
        records = await _close(holders[begin:end])
        begin = end
        closed += len(records)
        if records:
            deletions[asyncio.ensure_future(_deregister(records))] = [
                r.connection_id for r in records
            ]
    # Connections whose registration finished after the drain began were not in the list.
    late = await _close(rt.keeper.holders())
    if late:
        closed += len(late)
        deletions[asyncio.ensure_future(_deregister(late))] = [r.connection_id for r in late]

    failed = await _deregistered(deletions, timeout=deadline - loop.time())
    logger.info(event("server.drained", closed=closed, left_to_ttl=len(failed)))
    # With every item gone the lease goes too; otherwise it lapses, and a survivor reaps
    # what is left within a lease, rather than TTL within an hour.
    await rt.membership.leave(clean=not failed)


async def _close(holders: Sequence) -> list[Connection]:
    """Close each connection (consumer) with 1001; the records of those that were still open
    (not already ending)."""
    records = [r for r in await asyncio.gather(*(h.shut_down() for h in holders)) if r]
    keeper = runtime().keeper
    for record in records:
        keeper.claim(record.connection_id)  # being deleted: reconciliation leaves it alone
    return records


async def _deregister(records: list[Connection]) -> list[str]:
    """Delete one slice's items in batches. Returns the ids left to TTL."""
    tenants = {record.connection_id: record.tenant for record in records}
    try:
        failed = await runtime().registry.aderegister_many(list(tenants), tenants=tenants)
    except RegistryError as exc:
        failed = list(tenants)
        logger.warning(event("server.drain_deregister_failed", error=exc))
    finally:
        keeper = runtime().keeper
        for connection_id in tenants:
            keeper.untrack(connection_id)  # the claim ends with the delete
    metrics.drain_left_to_ttl(len(failed))
    return failed


async def _deregistered(deletions: dict[asyncio.Task, list[str]], *, timeout: float) -> list[str]:
    """Wait for every slice's deletion until the drain's bound. Returns the ids left to TTL:
    those a deletion failed to delete, and those of deletions still running at the bound."""
    if not deletions:
        return []
    done, pending = await asyncio.wait(deletions, timeout=max(0.0, timeout))
    failed = [connection_id for task in done for connection_id in task.result()]
    if pending:
        logger.warning(event("server.drain_timeout", seconds=settings.DRAIN_SECONDS))
        for task in pending:
            task.cancel()
            failed.extend(deletions[task])
        metrics.drain_left_to_ttl(sum(len(deletions[task]) for task in pending))
    return failed
