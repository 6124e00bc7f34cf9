"""ConnectionConsumer: the WebSocket shell around handshake, protocol and registry.

The rules live in handshake.py and protocol.py; this module does the I/O in the right order:
validate, accept, register, then `connected`; deregister on every way out (close, dropped TCP,
cancellation at server shutdown).
"""

import asyncio
import logging
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import close_codes, delivery, protocol
from .connection import Connection
from .handshake import HandshakeError, parse_connection_request
from .instance import instance_id
from .keeper import get_keeper
from .logs import event
from .registry import RegistryError, get_registry

__all__ = ["ConnectionConsumer"]

logger = logging.getLogger(__name__)

# Deregistrations still running after their consumer was cancelled; kept so that they are
# not garbage-collected half way.
_orphaned_releases: set[asyncio.Task] = set()


def _client_addr(scope) -> str:
    client = scope.get("client")
    if not client:
        return ""
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ConnectionConsumer(AsyncWebsocketConsumer):
    record: Connection | None = None
    _registering: asyncio.Future | None = None

    async def __call__(self, scope, receive, send):
        reason = "consumer_ended"
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # Server shutdown: daphne cancels every application, then waits for all of them
            # (see daphne_compat), so the release below completes before the process exits.
            reason = "server_shutdown"
            if self.record is not None:
                await self._close_quietly(close_codes.GOING_AWAY)
            raise
        finally:
            release = asyncio.ensure_future(self._release(reason))
            try:
                await asyncio.shield(release)
            except asyncio.CancelledError:
                _orphaned_releases.add(release)
                release.add_done_callback(_orphaned_releases.discard)
                raise

    async def connect(self):
        try:
            request = parse_connection_request(
                self.scope["query_string"],
                allowed_connection_types=settings.WS_CONNECTION_TYPES,
            )
        except HandshakeError as exc:
            logger.info(
                event("connection.rejected", reason=exc.code, client=_client_addr(self.scope))
            )
            await self.accept()  # daphne turns a close before accept into a bare HTTP 403
            await self._refuse(exc.code, exc.detail, exc.close_code)
            return

        record = Connection.open(
            request,
            now=time.time(),
            ttl_seconds=settings.CONNECTION_TTL_SECONDS,
            instance_id=instance_id(),
            channel_name=self.channel_name,
            client_addr=_client_addr(self.scope),
        )
        await self.accept()
        # Set before the write, and the write shielded: if we are cancelled meanwhile, the
        # release path waits for the write to finish, then deletes what it wrote.
        self.record = record
        self._registering = asyncio.ensure_future(get_registry().aregister(record))
        try:
            await asyncio.shield(self._registering)
        except RegistryError as exc:
            logger.warning(
                event(
                    "connection.rejected",
                    reason="registry_unavailable",
                    connection_id=record.connection_id,
                    error=exc,
                )
            )
            await self._refuse(
                "registry_unavailable",
                "the connection registry is unavailable; try again later",
                close_codes.TRY_AGAIN_LATER,
            )
            # The failed put may still have landed: delete it (after telling the client).
            await self._release("registration_failed")
            return
        get_keeper().track(self)
        logger.info(
            event(
                "connection.opened",
                connection_id=record.connection_id,
                tenant=record.tenant,
                deployment_id=record.deployment_id,
                connection_type=record.connection_type,
                client=record.client_addr,
            )
        )
        await self.send(protocol.connected(record))

    async def receive(self, text_data=None, bytes_data=None):
        if self.record is None:
            return  # refused or closing: frames that raced the close are dropped
        frame = protocol.parse_client_frame(
            text_data, bytes_data, max_bytes=settings.WS_MAX_MESSAGE_BYTES
        )
        match frame:
            case protocol.Ping():
                get_keeper().touch(self)
                await self.send(protocol.pong())
            case protocol.InfoRequest():
                await self.send(protocol.info(self.record))
            case protocol.Echo(data):
                await self.send(protocol.echo(data))
            case protocol.Rejected(code, detail, close_code):
                await self.send(protocol.error(code, detail))
                if close_code is not None:
                    await self.close(close_code)

    async def disconnect(self, code):
        await self._release("client_closed", close_code=code)

    # --- requests from operators and services, through the channel layer (delivery.py) ---

    async def connection_message(self, message: dict) -> None:
        if self.record is None:
            return  # closing: no acknowledgement, so the sender learns it did not arrive
        await self.send(protocol.message(message["data"]))
        await self._acknowledge(message)

    async def connection_disconnect(self, message: dict) -> None:
        if self.record is None:
            return
        await self.close(message["code"])
        await self._release("operator_disconnect", close_code=message["code"])
        await self._acknowledge(message)

    async def _acknowledge(self, message: dict) -> None:
        if message.get("ack"):
            await self.channel_layer.send(message["ack"], {"type": delivery.ACK})

    async def registration_lost(self) -> None:
        """Called by the keeper: this connection's item is gone, so the socket must go too."""
        self.record = None
        await self._refuse(
            "registration_lost",
            "this connection is no longer registered; reconnect",
            close_codes.TRY_AGAIN_LATER,
        )

    async def _refuse(self, code: str, detail: str, close_code: int) -> None:
        await self.send(protocol.error(code, detail))
        await self.close(close_code)

    async def _close_quietly(self, close_code: int) -> None:
        try:
            await self.close(close_code)
        except Exception as exc:  # the transport may already be gone; closing is best effort
            logger.debug(event("connection.close_failed", error=exc))

    async def _release(self, reason: str, close_code: int | None = None) -> None:
        """Deregister, once, whatever ended the connection."""
        record, self.record = self.record, None
        if record is None:
            return
        get_keeper().untrack(record.connection_id)
        if self._registering is not None and not self._registering.done():
            # A delete that overtook the put would leave the put's item behind.
            await asyncio.wait([self._registering])
        try:
            await get_registry().aderegister(record.connection_id)
        except RegistryError as exc:
            logger.warning(
                event(
                    "registry.deregister_failed",
                    connection_id=record.connection_id,
                    error=exc,
                    fallback="ttl",
                )
            )
        logger.info(
            event(
                "connection.closed",
                connection_id=record.connection_id,
                reason=reason,
                code=close_code if close_code is not None else "-",
            )
        )
