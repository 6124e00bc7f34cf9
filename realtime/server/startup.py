"""What the server does once, when the ASGI application is loaded."""

import logging

from django.conf import settings

from realtime.core.logs import event
from realtime.core.tokens import auth_warnings
from realtime.registry import RegistryError
from realtime.server.runtime import runtime

__all__ = ["prepare"]

logger = logging.getLogger(__name__)


def prepare() -> None:
    """Log who we are and what is unsafe; in development (DEBUG and a local endpoint) create
    the table.

    A failure here is logged, not raised: the server still starts, and refuses connections
    with 1013 until the registry can be reached.
    """
    registry = runtime().registry
    logger.info(
        event(
            "server.starting",
            instance_id=runtime().instance_id,
            table=registry.table_name,
            endpoint=settings.DYNAMODB_ENDPOINT_URL or "aws",
            auth=settings.WS_AUTH,
        )
    )
    for warning in auth_warnings(settings):
        logger.warning(event("server.unsafe_configuration", warning=warning))
    if not settings.REGISTRY_ENABLED:
        logger.warning(event("server.registry_disabled", note="benchmark mode: nothing recorded"))
        return
    if not (settings.DEBUG and settings.DYNAMODB_ENDPOINT_URL):
        return
    try:
        report = registry.create_table(wait=True)
    except RegistryError as exc:
        logger.error(event("registry.table_setup_failed", table=registry.table_name, error=exc))
        return
    logger.info(
        event(
            "registry.table_ready",
            table=report.table_name,
            created=report.created,
            ttl_enabled_now=report.ttl_enabled_now,
        )
    )
