"""Prometheus metrics: the metric objects and the functions the rest of the code calls.

Callers never touch prometheus_client: they call the functions below, which take values from
small fixed vocabularies and turn anything else into "other". Labels are never a tenant, a
deployment, a connection type or a connection id: those are chosen by clients, and one series
per value would grow without bound. Per-tenant numbers come from the registry
(`/api/stats`), not from metrics.

Everything lives on prometheus_client's default registry, with its default process, platform
and GC collectors; `realtime.operate.health.prometheus_metrics` serves it at /metrics. Each server
process has its own registry, so each instance (each daphne process) is scraped on its own;
no multiprocess mode is involved.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from realtime.core.refusals import DISCONNECT_REASONS, REJECTION_CODES

__all__ = [
    "CLOSE_REASONS",
    "DELIVERY_OUTCOMES",
    "LEASE_FAILURE_REASONS",
    "MESSAGE_KINDS",
    "OTHER",
    "REGISTRY_ERROR_REASONS",
    "REGISTRY_OPERATIONS",
    "REJECTION_REASONS",
    "RegistryCall",
    "broadcast_failed",
    "broadcast_finished",
    "connection_closed",
    "connection_opened",
    "connection_rejected",
    "connections_reaped",
    "delivery_finished",
    "drain_left_to_ttl",
    "exposition",
    "instances_live",
    "lease_renewal_failed",
    "lease_renewed",
    "message_received",
    "message_sent",
    "registry_call",
]

# A `_created` series per counter and histogram doubles the series count for a timestamp
# nobody graphs (process start is in process_start_time_seconds).
disable_created_metrics()

OTHER = "other"

CLOSE_REASONS = DISCONNECT_REASONS
REJECTION_REASONS = REJECTION_CODES
# Client frames by how the server read them ("invalid": answered with an `error`), and server
# frames by their `type`.
MESSAGE_KINDS = frozenset(
    {"ping", "info", "echo", "invalid", "connected", "pong", "message", "error"}
)
DELIVERY_ACTIONS = frozenset({"send", "disconnect"})
DELIVERY_OUTCOMES = frozenset({"delivered", "not_found", "gone", "not_responding", "unavailable"})

# boto3 method -> DynamoDB API name, the label IAM policies and CloudWatch use.
REGISTRY_OPERATIONS = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "get_item": "GetItem",
    "query": "Query",
    "scan": "Scan",
    "batch_write_item": "BatchWriteItem",
    "transact_write_items": "TransactWriteItems",
    "describe_table": "DescribeTable",
    "create_table": "CreateTable",
    "update_table": "UpdateTable",
    "describe_time_to_live": "DescribeTimeToLive",
    "update_time_to_live": "UpdateTimeToLive",
}
# RegistryUnavailable.reason (registry.dynamodb.client.unavailable) -> what an alert tells apart.
# DynamoDB error codes are grouped by what an operator does about them; the exact code is in
# the log.
_ERROR_GROUPS = {
    "no_credentials": "no_credentials",
    "unreachable": "unreachable",
    "timeout": "timeout",
    "ProvisionedThroughputExceededException": "throttled",
    "ThrottlingException": "throttled",
    "RequestLimitExceeded": "throttled",
    "ResourceNotFoundException": "table_not_found",
    "AccessDeniedException": "access_denied",
    "UnrecognizedClientException": "access_denied",
    "InvalidSignatureException": "access_denied",
    "ExpiredTokenException": "access_denied",
    "MissingAuthenticationTokenException": "access_denied",
    "ValidationException": "invalid_request",
    "SerializationException": "invalid_request",
    "TransactionConflictException": "conflict",
    "TransactionInProgressException": "conflict",
    "InternalServerError": "server_error",
    "InternalFailure": "server_error",
    "ServiceUnavailable": "server_error",
}
REGISTRY_ERROR_REASONS = frozenset({*_ERROR_GROUPS.values(), OTHER})

# DynamoDB answers in milliseconds; the client's timeouts (1 s connect, 1 s read, two
# attempts) put failures at 1-5 s. Buckets cover both ends.
_LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_CONNECTIONS_OPEN = Gauge(
    "realtime_connections_open",
    "WebSocket connections registered and open on this process.",
)
_CONNECTS = Counter(
    "realtime_connects_total",
    "WebSocket handshakes by outcome: accepted (registered) or rejected.",
    ["outcome"],
)
_REJECTIONS = Counter(
    "realtime_rejections_total",
    "Refused WebSocket handshakes by reason (the error code the client received).",
    ["reason"],
)
_DISCONNECTS = Counter(
    "realtime_disconnects_total",
    "Closed registered WebSocket connections by reason.",
    ["reason"],
)
_MESSAGES = Counter(
    "realtime_messages_total",
    "WebSocket frames: direction in (client to server) or out, by kind.",
    ["direction", "kind"],
)
_REGISTRY_SECONDS = Histogram(
    "realtime_registry_call_seconds",
    "DynamoDB calls of the connection registry, failed ones included, by API operation.",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)
_REGISTRY_ERRORS = Counter(
    "realtime_registry_errors_total",
    "DynamoDB calls that failed (unavailable, refused, timed out), by operation and reason.",
    ["operation", "reason"],
)
_DELIVERIES = Counter(
    "realtime_deliveries_total",
    "Requests to one connection (send, disconnect) by outcome.",
    ["action", "outcome"],
)
_BROADCASTS = Counter(
    "realtime_broadcasts_total",
    "Broadcasts by outcome: sent, or unavailable (registry or channel layer failed).",
    ["outcome"],
)
_BROADCAST_TARGETS = Counter(
    "realtime_broadcast_targets_total",
    "Connections targeted by broadcasts (one channel-layer message each).",
)

_INSTANCES_LIVE = Gauge(
    "realtime_instances_live",
    "Server instances whose lease is live, as this instance read the fleet at its last heartbeat.",
)
_LEASE_RENEWAL_SECONDS = Histogram(
    "realtime_lease_renewal_seconds",
    "Renewals of this instance's lease that succeeded, by duration.",
    buckets=_LATENCY_BUCKETS,
)
_LEASE_RENEWAL_FAILURES = Counter(
    "realtime_lease_renewal_failures_total",
    "Renewals of this instance's lease that failed: unavailable (DynamoDB), or lost (taken "
    "over by another instance: this one was fenced).",
    ["reason"],
)
_CONNECTIONS_REAPED = Counter(
    "realtime_connections_reaped_total",
    "Items of dead instances deleted by this instance after it took their lease over.",
)
_DRAIN_LEFT_TO_TTL = Counter(
    "realtime_drain_left_to_ttl_total",
    "Items a shutdown drain could not delete in time (or at all): left for a survivor to "
    "reap, or to TTL. Counted as each slice's deletion fails, so scrapes during the drain see it.",
)
LEASE_FAILURE_REASONS = frozenset({"unavailable", "lost"})

# Series that exist from the start read 0 instead of being absent: rate() and alerts on a
# reason work before its first occurrence.
for _reason in LEASE_FAILURE_REASONS:
    _LEASE_RENEWAL_FAILURES.labels(reason=_reason)
for _outcome in ("accepted", "rejected"):
    _CONNECTS.labels(outcome=_outcome)
for _reason in (*REJECTION_REASONS, OTHER):
    _REJECTIONS.labels(reason=_reason)
for _reason in (*CLOSE_REASONS, OTHER):
    _DISCONNECTS.labels(reason=_reason)
for _outcome in ("sent", "unavailable"):
    _BROADCASTS.labels(outcome=_outcome)


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


# --- connections ------------------------------------------------------------------------


def connection_opened() -> None:
    """A connection was registered and told `connected`."""
    _CONNECTIONS_OPEN.inc()
    _CONNECTS.labels(outcome="accepted").inc()


def connection_closed(reason: str) -> None:
    """An opened connection ended; `reason` as logged with `connection.closed`.

    The consumer calls it exactly once per `connection_opened` (its record is released once,
    whatever path ends it), so the gauge cannot drift.
    """
    _CONNECTIONS_OPEN.dec()
    _DISCONNECTS.labels(reason=_bounded(reason, CLOSE_REASONS)).inc()


def connection_rejected(reason: str) -> None:
    """A handshake was refused; `reason` is the error code the client received."""
    _CONNECTS.labels(outcome="rejected").inc()
    _REJECTIONS.labels(reason=_bounded(reason, REJECTION_REASONS)).inc()


# --- frames -------------------------------------------------------------------------------


# The message counters' children, looked up once: these are counted on every frame.
_MESSAGE_CHILDREN = {
    (direction, kind): _MESSAGES.labels(direction=direction, kind=kind)
    for direction in ("in", "out")
    for kind in (*MESSAGE_KINDS, OTHER)
}


def message_received(kind: str) -> None:
    """A client frame: "ping", "info", "echo", or "invalid" (answered with an error)."""
    _MESSAGE_CHILDREN.get(("in", kind), _MESSAGE_CHILDREN[("in", OTHER)]).inc()


def message_sent(kind: str) -> None:
    """A server frame, by its `type`: "connected", "pong", "info", "echo", "message", "error"."""
    _MESSAGE_CHILDREN.get(("out", kind), _MESSAGE_CHILDREN[("out", OTHER)]).inc()


# --- delivery -----------------------------------------------------------------------------


def delivery_finished(*, action: str, outcome: str) -> None:
    """A send or disconnect request to one connection ended with `outcome`."""
    _DELIVERIES.labels(
        action=_bounded(action, DELIVERY_ACTIONS),
        outcome=_bounded(outcome, DELIVERY_OUTCOMES),
    ).inc()


def broadcast_finished(targeted: int) -> None:
    """A broadcast reached the channel layer for `targeted` connections."""
    _BROADCASTS.labels(outcome="sent").inc()
    _BROADCAST_TARGETS.inc(targeted)


def broadcast_failed() -> None:
    """A broadcast stopped because the registry or the channel layer failed."""
    _BROADCASTS.labels(outcome="unavailable").inc()


# --- the fleet ----------------------------------------------------------------------------


def instances_live(count: int) -> None:
    """The fleet as read at this heartbeat: how many leases are live."""
    _INSTANCES_LIVE.set(count)


def lease_renewed(seconds: float) -> None:
    _LEASE_RENEWAL_SECONDS.observe(seconds)


def lease_renewal_failed(reason: str) -> None:
    """ "unavailable" (DynamoDB failed) or "lost" (the lease was taken over)."""
    _LEASE_RENEWAL_FAILURES.labels(reason=_bounded(reason, LEASE_FAILURE_REASONS)).inc()


def connections_reaped(count: int) -> None:
    _CONNECTIONS_REAPED.inc(count)


def drain_left_to_ttl(count: int) -> None:
    """A shutdown drain left `count` items undeleted (`server.drained ... left_to_ttl=N`)."""
    _DRAIN_LEFT_TO_TTL.inc(count)


# --- the registry -------------------------------------------------------------------------


class _HasReason(Protocol):
    reason: str


_Error = TypeVar("_Error", bound=_HasReason)


class RegistryCall:
    """One DynamoDB call being timed; `failed` records why it failed."""

    def __init__(self, operation: str):
        self.operation = operation

    def failed(self, error: _Error) -> _Error:
        """Count `error` (a RegistryUnavailable) against this operation; returns it, to raise."""
        reason = _ERROR_GROUPS.get(error.reason, OTHER)
        _REGISTRY_ERRORS.labels(operation=self.operation, reason=reason).inc()
        return error


@contextmanager
def registry_call(operation: str) -> Iterator[RegistryCall]:
    """Time the DynamoDB call made inside the block, whether it succeeds or raises.

    `operation` is the boto3 method name ("put_item"); series carry the API name ("PutItem").
    Errors are counted only through `RegistryCall.failed`: a failed condition
    (ConditionalCheckFailedException) is an answer, not an error.
    """
    call = RegistryCall(REGISTRY_OPERATIONS.get(operation, OTHER))
    started = time.perf_counter()
    try:
        yield call
    finally:
        _REGISTRY_SECONDS.labels(operation=call.operation).observe(time.perf_counter() - started)


# --- exposition ---------------------------------------------------------------------------


def exposition() -> tuple[bytes, str]:
    """Every metric of this process in Prometheus' text format, and its content type.

    Pure CPU over in-memory values (plus a read of /proc for the process collector): a few
    milliseconds, cheap enough to run on the event loop.
    """
    return generate_latest(REGISTRY), CONTENT_TYPE_PLAIN_0_0_4
