"""Every refusal the server can give a client, in one table: code -> close code and detail.

A refusal is told to the client as an `error` frame with its `code` (stable, for machines)
and a `detail` (for people), and, when it ends the connection, a close frame with its close
code. Raise sites take the close code from here, metrics take their reason labels from here,
and a test holds the README's tables of codes to it.

Three kinds, by what they end:

- HANDSHAKE: the connection is refused before anything is written to the registry; counted
  as `realtime_rejections_total{reason=<code>}`.
- FRAME: one bad message is refused and the connection stays open. `rate_limited` escalates:
  after WS_RATE_ABUSE refusals within ten seconds it closes with its close code.
- CLOSE: an open, registered connection is ended by the server; counted as
  `realtime_disconnects_total{reason=<reason>}`.
"""

import enum
from dataclasses import dataclass

from realtime.core import close_codes

__all__ = [
    "CLOSE_REASON_BYTES",
    "DISCONNECT_REASONS",
    "REFUSALS",
    "REJECTION_CODES",
    "Kind",
    "Refusal",
    "refusal",
]


class Kind(enum.Enum):
    HANDSHAKE = "handshake"
    FRAME = "frame"
    CLOSE = "close"


CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's payload is 125 bytes, 2 of them the code


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    kind: Kind
    close_code: int | None  # None: an error frame only
    detail: str  # the default text for people; raise sites may say more precisely why
    reason: str = ""  # the disconnect reason, when it closes an open connection

    def __post_init__(self):
        # The code is the close frame's reason (so that a browser's close event says why),
        # and RFC 6455 gives a reason 123 bytes.
        if len(self.code.encode("utf-8")) > CLOSE_REASON_BYTES:
            raise ValueError(f"refusal code {self.code!r} does not fit a close frame's reason")

    @property
    def disconnect_reason(self) -> str:
        return self.reason or self.code


_Q, _AUTH, _FORBID = close_codes.INVALID_QUERY, close_codes.NOT_AUTHENTICATED, close_codes.FORBIDDEN
_H, _F, _C = Kind.HANDSHAKE, Kind.FRAME, Kind.CLOSE

REFUSALS: dict[str, Refusal] = {
    r.code: r
    for r in (
        # --- the handshake --------------------------------------------------------------
        Refusal("missing_parameter", _H, _Q, "a required query parameter is missing"),
        Refusal("repeated_parameter", _H, _Q, "a query parameter is given more than once"),
        Refusal("invalid_parameter", _H, _Q, "a query parameter's value is not valid"),
        Refusal("invalid_encoding", _H, _Q, "query string must be ASCII with UTF-8 %-encoding"),
        Refusal("query_too_long", _H, _Q, "the query string is too long"),
        Refusal("token_missing", _H, _AUTH, "this server requires a 'token' query parameter"),
        Refusal("token_invalid", _H, _AUTH, "the token is not valid"),
        Refusal("token_expired", _H, _AUTH, "the token has expired"),
        Refusal("token_mismatch", _H, _FORBID, "the token's claims do not match the query"),
        Refusal("connection_type_not_allowed", _H, _FORBID, "connection_type not accepted"),
        Refusal("origin_not_allowed", _H, _FORBID, "this Origin may not connect"),
        Refusal("over_quota", _H, close_codes.OVER_LIMIT, "the tenant is at its connection limit"),
        Refusal(
            "too_many_connections",
            _H,
            close_codes.OVER_LIMIT,
            "too many connections from this address; close some first",
        ),
        Refusal(
            "too_many_handshakes",
            _H,
            close_codes.OVER_LIMIT,
            "too many handshakes from this address; retry later, with backoff",
        ),
        Refusal(
            "registry_unavailable",
            _H,
            close_codes.TRY_AGAIN_LATER,
            "the connection registry is unavailable; try again later",
        ),
        Refusal(
            "draining", _H, close_codes.TRY_AGAIN_LATER, "this server is shutting down; reconnect"
        ),
        # --- one message: the connection stays open -------------------------------------
        Refusal("invalid_json", _F, None, "message is not valid JSON"),
        Refusal("not_an_object", _F, None, "message must be a JSON object with a 'type'"),
        Refusal("binary_not_supported", _F, None, "binary frames are not supported; send JSON"),
        Refusal(
            "rate_limited",
            _F,
            close_codes.POLICY_VIOLATION,  # only once refusals pile up (WS_RATE_ABUSE)
            "over the message rate; this message was dropped",
            reason="policy",
        ),
        # --- the server ends an open connection -----------------------------------------
        Refusal("message_too_big", _C, close_codes.MESSAGE_TOO_BIG, "message over the limit"),
        Refusal(
            "slow_consumer",
            _C,
            close_codes.POLICY_VIOLATION,
            "the client does not read what it is sent; reconnect",
        ),
        Refusal(
            "registration_lost",
            _C,
            close_codes.TRY_AGAIN_LATER,
            "this connection is no longer registered; reconnect",
        ),
        Refusal("idle_timeout", _C, close_codes.IDLE_TIMEOUT, "no message for too long"),
        Refusal("max_lifetime", _C, close_codes.MAX_LIFETIME, "open for too long; reconnect"),
    )
}

# The `reason` label of realtime_rejections_total: the refused handshake's code.
REJECTION_CODES = frozenset(r.code for r in REFUSALS.values() if r.kind is Kind.HANDSHAKE)

# The `reason` label of realtime_disconnects_total: the refusals that close an open
# connection, and the endings that are not refusals.
DISCONNECT_REASONS = frozenset(
    {
        *(
            r.disconnect_reason
            for r in REFUSALS.values()
            if r.kind is not Kind.HANDSHAKE and r.close_code is not None
        ),
        "client_closed",
        "server_shutdown",
        "operator_disconnect",
        "consumer_ended",
        "registration_failed",
    }
)


def refusal(code: str) -> Refusal:
    """The table's entry for `code`.

    Raises:
        KeyError: a code that is not in the table (a bug at the raise site).
    """
    return REFUSALS[code]
