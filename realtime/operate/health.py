"""Operational HTTP endpoints: /healthz and /readyz for load balancers, /metrics for Prometheus.

- `GET /healthz`: the process is alive and its event loop answers. No I/O, so a DynamoDB or
  Redis outage never gets a healthy process restarted; 200 also while draining, so that an
  orchestrator does not kill a process that is closing its connections.
- `GET /readyz`: this instance can take new connections: its registry table is reachable
  and usable (DescribeTable, answer cached for `DYNAMODB_CACHE_SECONDS` and shared by
  concurrent requests, so a load balancer polling every second costs DynamoDB one call per
  two seconds), and its channel layer answers (a PING to every Redis shard; the in-memory
  layer lives in this process and is always ready). 503 with the failing check's reason
  otherwise, and 503 `{"status": "draining"}` once `runtime().start_draining()` was called.
- `GET /metrics`: Prometheus' text format; `Authorization: Bearer <METRICS_TOKEN>` when
  METRICS_TOKEN is set.

All three are unauthenticated except /metrics with a token, answer `Cache-Control: no-store`,
and never carry secrets: reasons are short codes ("unreachable", "timeout"), never exception
messages or endpoints.
"""

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from realtime import metrics
from realtime.core.logs import event
from realtime.registry import RegistryError, RegistryUnavailable
from realtime.server.runtime import runtime

__all__ = [
    "DYNAMODB_CACHE_SECONDS",
    "LAYER_TIMEOUT_SECONDS",
    "CachedCheck",
    "check_channel_layer",
    "check_dynamodb",
    "healthz",
    "prometheus_metrics",
    "readyz",
]

logger = logging.getLogger(__name__)

OK = "ok"
# REGISTRY_ENABLED=false (benchmarks): there is no table to check, and nothing to wait for.
DISABLED = "disabled"
DYNAMODB_CACHE_SECONDS = 2.0
# channels_redis's sockets time out after 10 s (settings.py); a health check must answer
# well within a load balancer's timeout (5 s on an ALB).
LAYER_TIMEOUT_SECONDS = 2.0
# DescribeTable answers for a table that accepts reads and writes.
_USABLE_TABLE = frozenset({"ACTIVE", "UPDATING"})
_NO_STORE = {"Cache-Control": "no-store"}


class CachedCheck:
    """An async check whose answer is reused for `seconds` after it came.

    Concurrent callers share one run: a burst of requests during an outage ties up one
    registry thread, not one each. The run is shielded, so a caller that goes away does not
    cancel it for the others.
    """

    def __init__(
        self,
        check: Callable[[], Awaitable[str]],
        *,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.check = check
        self.seconds = seconds
        self.clock = clock
        self._answer: tuple[float, str] | None = None
        self._running: asyncio.Task | None = None

    async def __call__(self) -> str:
        if self._answer is not None and self.clock() - self._answer[0] < self.seconds:
            return self._answer[1]
        running = self._running
        # A task of another event loop (a test's earlier loop) cannot be awaited here.
        loop = asyncio.get_running_loop()
        if running is None or running.done() or running.get_loop() is not loop:
            running = self._running = asyncio.ensure_future(self._run())
        return await asyncio.shield(running)

    async def _run(self) -> str:
        answer = await self.check()
        self._answer = (self.clock(), answer)
        return answer


async def check_dynamodb() -> str:
    """Returns "ok", or why the registry table cannot be used.

    Bounded by the registry client's timeouts and retries (DYNAMODB_CONNECT_TIMEOUT,
    DYNAMODB_READ_TIMEOUT, DYNAMODB_MAX_ATTEMPTS): a few seconds at worst.
    """
    registry = runtime().registry
    if not registry.records:
        return DISABLED
    try:
        table = await registry.adescribe_table()
    except RegistryUnavailable as exc:
        return exc.reason or "unavailable"
    except RegistryError:
        return "unavailable"
    if table is None:
        return "table_not_found"
    status = table.get("TableStatus", "UNKNOWN")
    return OK if status in _USABLE_TABLE else f"table_{status.lower()}"


async def check_channel_layer() -> str:
    """Returns "ok", or why the channel layer cannot carry messages to and from here."""
    layer = get_channel_layer()
    if layer is None:
        return "not_configured"
    if isinstance(layer, InMemoryChannelLayer):
        return OK  # in this process: up as long as we are
    if not isinstance(layer, RedisChannelLayer):
        # Only the two backends settings.py configures are checked; another one fails loudly
        # here rather than being reported ready unchecked.
        return "unsupported_layer"
    try:
        async with asyncio.timeout(LAYER_TIMEOUT_SECONDS):
            # The layer's own per-loop connection pools: the sockets consumers and delivery
            # use, every shard of the ring.
            for index in range(layer.ring_size):
                await layer.connection(index).ping()
    except (TimeoutError, RedisTimeoutError):
        return "timeout"
    except (RedisConnectionError, OSError):
        return "unreachable"
    except RedisError:
        return "redis_error"
    return OK


_dynamodb = CachedCheck(check_dynamodb, seconds=DYNAMODB_CACHE_SECONDS)
# Whether the last /readyz found the instance ready; None before the first. Transitions are
# logged, not every poll.
_was_ready: bool | None = None


def _log_transition(ready: bool, checks: dict[str, str]) -> None:
    global _was_ready
    previous, _was_ready = _was_ready, ready
    if ready and previous is False:
        logger.info(event("health.ready"))
    elif not ready and previous is not False:
        logger.warning(event("health.not_ready", **checks))


@require_safe
async def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"}, headers=_NO_STORE)


@require_safe
async def readyz(request: HttpRequest) -> JsonResponse:
    if runtime().is_draining():
        return _logged(JsonResponse({"status": "draining"}, status=503, headers=_NO_STORE))
    dynamodb, channel_layer = await asyncio.gather(_dynamodb(), check_channel_layer())
    checks = {"dynamodb": dynamodb, "channel_layer": channel_layer}
    ready = all(answer in (OK, DISABLED) for answer in checks.values())
    _log_transition(ready, checks)
    return _logged(
        JsonResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status=200 if ready else 503,
            headers=_NO_STORE,
        )
    )


@require_safe
async def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    if not _metrics_authorized(request):
        logger.warning(event("metrics.auth_failed", client=request.META.get("REMOTE_ADDR") or "-"))
        return _logged(
            JsonResponse(
                {"code": "invalid_token", "detail": "send 'Authorization: Bearer <METRICS_TOKEN>'"},
                status=401,
                headers={**_NO_STORE, "WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        )
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type, headers=_NO_STORE)


def _logged(response: HttpResponse) -> HttpResponse:
    """Keep Django's request logger quiet about this response: we log our own events.

    Django logs every 5xx at ERROR and every 4xx at WARNING; a load balancer polling an
    unready instance every second would write an ERROR line a second. Its `log_response`
    skips responses marked as already logged.
    """
    response._has_been_logged = True
    return response


def _metrics_authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    # Constant time: a mismatch must not tell how much of the guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def probes_before_host_check(get_response):
    """Middleware, first in MIDDLEWARE: answer /healthz and /readyz before anything else.

    A load balancer's health check names the instance by its IP address in the Host header,
    which ALLOWED_HOSTS rightly refuses for everything else; the probes reveal nothing and
    must answer whatever the Host.
    """
    probes = {"/healthz": healthz, "/readyz": readyz}

    async def middleware(request: HttpRequest) -> HttpResponse:
        probe = probes.get(request.path)
        if probe is not None:
            return await probe(request)
        return await get_response(request)

    return middleware


probes_before_host_check.async_capable = True
probes_before_host_check.sync_capable = False
