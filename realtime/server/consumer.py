"""ConnectionConsumer: the WebSocket shell around handshake, protocol and registry.

The rules live in handshake.py, tokens.py, protocol.py and limits.py; this module does the I/O
in the right order: validate, accept, register, then `connected`; deregister on every way out
(close, dropped TCP, limits, operator, cancellation at server shutdown).
"""

import asyncio
import logging
import time

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from realtime import metrics
from realtime.core import close_codes, protocol
from realtime.core.connection import Connection
from realtime.core.handshake import (
    ConnectionRequest,
    HandshakeError,
    check_origin,
    parse_connection_request,
    token_from_query,
)
from realtime.core.limits import MessageRate, Verdict
from realtime.core.logs import event
from realtime.core.refusals import refusal
from realtime.core.tokens import verify_token
from realtime.registry import QuotaExceeded, RegistryError
from realtime.server import inbox
from realtime.server.runtime import runtime

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


def _host(client_addr: str) -> str:
    """`_client_addr`'s address without its port ("[v6]" stays bracketed): what per-address
    limits count by."""
    return client_addr.rpartition(":")[0]


class ConnectionConsumer(AsyncWebsocketConsumer):
    groups = ()  # no channel-layer groups; AsyncWebsocketConsumer would make a list per connection

    def __init__(self):
        # Every attribute, set here once and in one order: CPython then shares the attribute
        # names across all instances and keeps only the values per connection.
        self.scope = None
        self.base_send = None
        self.record: Connection | None = None  # set from the registration on, until released
        self.opened_at = 0.0  # monotonic
        self.last_seen = 0.0  # monotonic: the client's last message
        self._registering: asyncio.Future | None = None
        self._rate: MessageRate | None = None
        # Set once the server decides to close (later frames are dropped): the refusal's code
        # when it refused something, "" otherwise (an operator's close, shutdown).
        self._closing: str | None = None
        self._opened = False  # counted by metrics.connection_opened, so its end must be too

    async def __call__(self, scope, receive, send):
        # AsyncConsumer.__call__, reduced to what this consumer needs: no channel of its own
        # (requests reach it through the process's inbox) and no task per message.
        self.scope = scope
        self.base_send = send
        reason = "consumer_ended"
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            # Server shutdown: daphne cancels every application, then waits for all of them
            # (see adapters/daphne.py), so the release below completes before the process exits.
            reason = "server_shutdown"
            if self.record is not None:
                await self._close_quietly(close_codes.GOING_AWAY)
            raise
        finally:
            await _to_completion(self._release(reason))

    async def dispatch(self, message: dict) -> None:
        # Channels' dispatch first closes stale database connections, on Django's one sync
        # thread, for every message: a thread hop per frame. This consumer never touches the
        # database, and it receives three message types, so it dispatches directly.
        kind = message["type"]
        if kind == "websocket.receive":
            await self.receive(message.get("text"), message.get("bytes"))
        elif kind == "websocket.connect":
            await self.websocket_connect(message)
        elif kind == "websocket.disconnect":
            await self.websocket_disconnect(message)
        else:
            raise ValueError(f"no handler for message type {kind}")

    async def websocket_disconnect(self, message: dict) -> None:
        # Whoever sent the last close frame, the connection ended for the reason the server
        # refused it, if it did: here (`_refuse`), or in the transport (`refusal`, set by the
        # adapters for limits they enforce: message size, control frames, unsent data).
        refused = message.get("refusal") or self._closing
        reason = refusal(refused).disconnect_reason if refused else "client_closed"
        await self._release(reason, close_code=message.get("code"))
        raise StopConsumer()

    # --- the handshake --------------------------------------------------------------------

    async def connect(self):
        await self.accept()  # daphne turns a close before accept into a bare HTTP 403
        rt = runtime()
        if rt.is_draining():
            await self._reject(HandshakeError("draining"))
            return
        client_addr = _client_addr(self.scope)
        address = _host(client_addr)
        if not rt.addresses.handshake(address, time.monotonic()):
            await self._reject(HandshakeError("too_many_handshakes"))
            return
        try:
            request = self._admit()
        except HandshakeError as exc:
            await self._reject(exc)
            return
        # Checked here, counted once registered (`_opened`): connections of one address that
        # register at the same moment may pass the cap by the few the handshake rate lets in.
        cap = rt.addresses.max_connections
        if cap and rt.addresses.open_count(address) >= cap:
            await self._reject(HandshakeError("too_many_connections"))
            return

        rt.start()
        if not rt.membership.held:
            # Nothing is registered under an instance id before that instance holds a lease:
            # otherwise, if it died, no survivor would know to reap the item.
            try:
                await rt.membership.join()
            except RegistryError as exc:
                await self._reject(HandshakeError("registry_unavailable"), error=exc)
                return
        record = Connection.open(
            request,
            now=time.time(),
            ttl_seconds=settings.CONNECTION_TTL_SECONDS,
            instance_id=rt.instance_id,
            channel_name=await rt.inbox.address(),
            client_addr=client_addr,
        )
        # Set and claimed before the write, and the write shielded: if we are cancelled
        # meanwhile, the release path waits for the write to finish, then deletes what it
        # wrote; and reconciliation leaves the item alone while the write is under way.
        self.record = record
        keeper = runtime().keeper
        keeper.claim(record.connection_id)
        self._registering = asyncio.ensure_future(runtime().registry.aregister(record))
        try:
            await asyncio.shield(self._registering)
        except QuotaExceeded as exc:
            self.record = None  # nothing was written: the quota and the item go together
            keeper.untrack(record.connection_id)
            keeper.recount_quota_soon(record.tenant)
            await self._reject(HandshakeError("over_quota", str(exc)))
            return
        except RegistryError as exc:
            await self._reject(
                HandshakeError("registry_unavailable"),
                error=exc,
            )
            # The failed put may still land: delete it now, and reconcile later in case it
            # lands after the delete.
            keeper.mark_dirty()
            await self._release("registration_failed")
            return
        if record.instance_id != rt.instance_id:
            # This instance was fenced while the write was under way: the fencing closes the
            # sockets it holds, and this one is not held yet.
            await self._reject(HandshakeError("registry_unavailable"), error="instance fenced")
            await self._release("registration_failed")
            return

        self._registering = None  # done: a finished task still holds its result and frames
        self.opened_at = self.last_seen = time.monotonic()
        self._rate = MessageRate(
            rate=settings.WS_RATE_PER_SECOND,
            burst=settings.WS_RATE_BURST,
            abuse=settings.WS_RATE_ABUSE,
            now=self.opened_at,
        )
        keeper.track(self)
        runtime().sweeper.ensure_running()
        metrics.connection_opened()
        rt.addresses.open(address)
        self._opened = True
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
        await self._send("connected", protocol.connected(record))

    def _admit(self) -> ConnectionRequest:
        """Who may connect: origin, query string, then the token when WS_AUTH is "signed".

        Raises:
            HandshakeError: with the code and close code the client is told.
        """
        query_string = self.scope["query_string"]
        check_origin(self.scope.get("headers", ()), settings.WS_ALLOWED_ORIGINS)
        request = parse_connection_request(
            query_string, allowed_connection_types=settings.WS_CONNECTION_TYPES
        )
        if settings.WS_AUTH == "signed":
            verify_token(
                token_from_query(query_string),
                request,
                secret=settings.WS_TOKEN_SECRET,
                now=time.time(),
                max_ttl_seconds=settings.WS_TOKEN_MAX_TTL_SECONDS,
            )
        return request

    async def _reject(self, exc: HandshakeError, *, error: Exception | str | None = None) -> None:
        fields = {"reason": exc.code, "client": _client_addr(self.scope)}
        if error is not None:
            fields["error"] = error
        logger.info(event("connection.rejected", **fields))
        metrics.connection_rejected(exc.code)
        await self._refuse(exc.code, exc.detail, exc.close_code)

    # --- client frames ----------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.record is None or self._closing is not None:
            return  # refused or closing: frames that raced the close are dropped
        now = time.monotonic()
        self.last_seen = now
        verdict = self._rate.check(now)
        if verdict is not Verdict.ALLOW:
            await self._rate_limited(verdict)
            return
        frame = protocol.parse_client_frame(
            text_data, bytes_data, max_bytes=settings.WS_MAX_MESSAGE_BYTES
        )
        match frame:
            case protocol.Ping():
                metrics.message_received("ping")
                runtime().keeper.touch(self)
                await self._send("pong", protocol.pong())
            case protocol.InfoRequest():
                metrics.message_received("info")
                await self._send("info", protocol.info(self.record))
            case protocol.Echo(data):
                metrics.message_received("echo")
                await self._send("echo", protocol.echo(data))
            case protocol.Rejected(code, detail, close_code):
                metrics.message_received("invalid")
                if close_code is None:
                    await self._send("error", protocol.error(code, detail))
                else:
                    await self._refuse(code, detail, close_code)

    async def _rate_limited(self, verdict: Verdict) -> None:
        rate = settings.WS_RATE_PER_SECOND
        metrics.message_received("invalid")
        if verdict is Verdict.ABUSE:
            logger.info(event("connection.abuse", connection_id=self.record.connection_id))
            await self._refuse(
                "rate_limited",
                f"sustained sending over {rate:g} messages per second",
                refusal("rate_limited").close_code,
            )
        else:
            await self._send(
                "error",
                protocol.error(
                    "rate_limited", f"over {rate:g} messages per second; this one was dropped"
                ),
            )

    # --- requests from operators and services, through the inbox (operate/delivery.py)-------------

    async def handle_request(self, message: dict) -> bool:
        """Carry out a delivery request; False if this connection is already ending."""
        if self.record is None or self._closing is not None:
            return False
        if message["type"] == inbox.MESSAGE:
            await self._send("message", protocol.message(message["data"]))
        elif message["type"] == inbox.DISCONNECT:
            await self._close_quietly(message["code"])
            await self._release("operator_disconnect", close_code=message["code"])
        else:
            raise ValueError(f"unknown request {message['type']}")
        return True

    # --- endings the server decides ---------------------------------------------------------

    async def registration_lost(self) -> None:
        """Called by the keeper: this connection's item is gone, so the socket must go too."""
        lost = refusal("registration_lost")
        record, self.record = self.record, None
        if record is not None:
            _ended(record, lost.disconnect_reason, lost.close_code)
        await self._refuse(lost.code, lost.detail, lost.close_code)

    async def expire(self, reason: str) -> None:
        """Called by the timeout sweeper: idle too long, or open too long."""
        detail = {
            "idle_timeout": f"no message for {settings.WS_IDLE_TIMEOUT_SECONDS} seconds",
            "max_lifetime": f"open for {settings.WS_MAX_LIFETIME_SECONDS} seconds; reconnect",
        }[reason]
        await self._end(reason, detail)

    async def fenced(self) -> None:
        """Called when this instance's lease was taken over: the fleet has written this
        connection off (its item was reaped), so the socket goes too, and whatever is left
        of its item with it."""
        await self._end("registration_lost")

    async def _end(self, code: str, detail: str | None = None) -> None:
        """Refuse with `code` (refusals.py), close, and deregister."""
        if self.record is None or self._closing is not None:
            return
        entry = refusal(code)
        await self._refuse(code, detail or entry.detail, entry.close_code)
        await self._release(entry.disconnect_reason, close_code=entry.close_code)

    async def shut_down(self) -> Connection | None:
        """Close with 1001 and hand the record to the shutdown drain, which deregisters
        in batches. Returns None if the connection was already ending."""
        record, self.record = self.record, None
        if record is None:
            return None
        runtime().keeper.untrack(record.connection_id)
        await self._close_quietly(close_codes.GOING_AWAY)
        _ended(record, "server_shutdown", close_codes.GOING_AWAY)
        return record

    async def _send(self, kind: str, text: str) -> None:
        metrics.message_sent(kind)
        # The client may be gone (uvicorn says so on a send): the disconnect event that says
        # why is already waiting, and ends the connection as what it was. (try, not
        # contextlib.suppress: this runs for every frame, and a try costs nothing.)
        try:  # noqa: SIM105
            await self.base_send({"type": "websocket.send", "text": text})
        except OSError:
            pass

    async def _refuse(self, code: str, detail: str, close_code: int) -> None:
        self._closing = code
        await self._send("error", protocol.error(code, detail))
        # The code in the close frame's reason too: a browser's close event says why without
        # the error frame (the refusal table keeps every code within a reason's 123 bytes).
        await self.close(close_code, reason=code)

    async def _close_quietly(self, close_code: int) -> None:
        self._closing = ""
        try:
            await self.close(close_code)
        except Exception as exc:  # the transport may already be gone; closing is best effort
            logger.debug(event("connection.close_failed", error=exc))

    async def _release(self, reason: str, close_code: int | None = None) -> None:
        """Deregister, once, whatever ended the connection.

        The work runs in a task that a cancellation of the consumer does not stop: daphne
        cancels an application still running --application-close-timeout (10 s) after its
        client left, and a deregistration waiting for a slow DynamoDB would otherwise be
        dropped unseen (asgiref never runs a call that had not started yet): no delete, no
        log, no reconciliation, the item left behind.
        """
        record, self.record = self.record, None
        if record is None:
            return
        keeper = runtime().keeper
        keeper.untrack(record.connection_id)
        keeper.claim(record.connection_id)  # deleting: reconciliation must not delete it too
        opened, self._opened = self._opened, False
        await _to_completion(self._deregister(record, reason, close_code, opened))

    async def _deregister(
        self, record: Connection, reason: str, close_code: int | None, opened: bool
    ) -> None:
        registering = self._registering
        if registering is not None:
            if not registering.done():
                # A delete that overtook the put would leave the put's item behind.
                await asyncio.wait([registering])
            if not registering.cancelled():
                registering.exception()  # retrieved: a failed put is answered by the delete
        keeper = runtime().keeper
        try:
            await runtime().registry.aderegister(record.connection_id)
        except RegistryError as exc:
            logger.warning(
                event("registry.deregister_failed", connection_id=record.connection_id, error=exc)
            )
            keeper.mark_dirty()
        finally:
            keeper.untrack(record.connection_id)  # the claim ends with the delete
        if opened:  # a refused or abandoned registration was never counted as opened
            _ended(record, reason, close_code)


async def _to_completion(work) -> None:
    """Await `work` in a task of its own that a cancellation of the caller does not stop: the
    caller is cancelled at once, and the task is kept referenced until it finishes."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        _orphaned_releases.add(task)
        task.add_done_callback(_orphaned_releases.discard)
        raise


def _ended(record: Connection, reason: str, close_code: int | None = None) -> None:
    """Log and count the end of an opened connection; called once per connection."""
    metrics.connection_closed(reason)
    runtime().addresses.close(_host(record.client_addr))
    logger.info(
        event(
            "connection.closed",
            connection_id=record.connection_id,
            reason=reason,
            code=close_code if close_code is not None else "-",
        )
    )
