"""Graceful shutdown: stop taking connections, close every client with 1001, deregister.

Called once by the server's shutdown hook (adapters/daphne.py under daphne,
adapters/lifespan.py under uvicorn). Deregistration is bounded by DRAIN_SECONDS: items still
registered when the bound runs out are left to TTL and logged, so that an orchestrator's kill
timeout is never the thing that ends the process.
"""

import asyncio
import logging

from django.conf import settings

from realtime.core.logs import event
from realtime.registry import RegistryError
from realtime.server.runtime import runtime

__all__ = ["drain"]

logger = logging.getLogger(__name__)


async def drain() -> None:
    runtime().start_draining()  # /readyz answers 503 and new handshakes are refused
    holders = runtime().keeper.holders()
    records = [r for r in await asyncio.gather(*(h.shut_down() for h in holders)) if r]
    tenants = {record.connection_id: record.tenant for record in records}
    try:
        async with asyncio.timeout(settings.DRAIN_SECONDS):
            failed = await runtime().registry.aderegister_many(list(tenants), tenants=tenants)
    except TimeoutError:
        failed = list(tenants)
        logger.warning(event("server.drain_timeout", seconds=settings.DRAIN_SECONDS))
    except RegistryError as exc:
        failed = list(tenants)
        logger.warning(event("server.drain_deregister_failed", error=exc))
    logger.info(event("server.drained", closed=len(records), left_to_ttl=len(failed)))
    # With every item gone the lease goes too; otherwise it lapses, and a survivor reaps
    # what is left within a lease, rather than TTL within an hour.
    await runtime().membership.leave(clean=not failed)
