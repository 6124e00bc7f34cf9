"""The message protocol: client frames in, decisions out; server messages built as JSON text.

Pure code, no I/O. Every frame a client can send maps to exactly one of `Ping`, `InfoRequest`,
`Echo` or `Rejected`; nothing here raises on client input.
"""

import json
import math
import time
from dataclasses import dataclass

from realtime.core.connection import Connection, isoformat
from realtime.core.refusals import Kind, refusal

__all__ = [
    "MAX_NESTING_DEPTH",
    "Echo",
    "InfoRequest",
    "InvalidJson",
    "Ping",
    "Rejected",
    "UnsendableData",
    "check_outgoing",
    "connected",
    "echo",
    "encode",
    "error",
    "info",
    "message",
    "parse_client_frame",
    "parse_json",
    "pong",
]


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class InfoRequest:
    pass


@dataclass(frozen=True, slots=True)
class Echo:
    data: dict


@dataclass(frozen=True, slots=True)
class Rejected:
    """Bad input: answer with an `error` frame; close too when `close_code` is set, as the
    refusal table (refusals.py) says for refusals that end the connection."""

    code: str
    detail: str
    close_code: int | None = None

    def __post_init__(self):
        entry = refusal(self.code)
        if entry.kind is Kind.CLOSE:
            object.__setattr__(self, "close_code", entry.close_code)


ClientFrame = Ping | InfoRequest | Echo | Rejected

_PING = Ping()
_INFO = InfoRequest()

# Arrays and objects inside one another. Without a limit of our own, the interpreter's recursion
# limit decides: json.loads accepts ~1500 levels but json.dumps fails at ~1000, so a message
# that parsed could not be echoed. 128 is far beyond any real message and far below both.
MAX_NESTING_DEPTH = 128
_TOO_DEEP = f"message is nested too deeply (more than {MAX_NESTING_DEPTH} levels)"


class InvalidJson(ValueError):
    """Text that is not JSON by the protocol's rules; the message says why, for people."""


def _reject_constant(name: str):
    raise InvalidJson(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson(f"number {text[:20]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise InvalidJson(f"key {json.dumps(twice)[:60]} is given more than once")
    return value


# Made once: json.loads and json.dumps with options build a new decoder or encoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
# For operators' input: an object with a key given twice is ambiguous (which one counts
# depends on the parser), so it is refused rather than read last-one-wins. Client frames keep
# the faster decoder: the server answers them, it never acts on their content.
_UNIQUE_KEYS_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _loads(text: str, decoder: json.JSONDecoder = _DECODER):
    """json.loads without NaN, Infinity or numbers out of float range. Raises InvalidJson."""
    try:
        return decoder.decode(text)
    except InvalidJson:
        raise
    except ValueError as exc:  # JSONDecodeError, and ints over Python's digit limit
        raise InvalidJson(f"message is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidJson(_TOO_DEEP) from None


def _utf8_length_over(text: str, limit: int) -> bool:
    # A character is at most 4 bytes: most frames are decided without encoding them.
    if len(text) * 4 <= limit:
        return False
    if len(text) > limit:
        return True
    return len(text.encode("utf-8", "surrogatepass")) > limit


def _nesting_over(text: str, value, limit: int) -> bool:
    # Fewer brackets than the limit cannot nest deeper: most frames skip the walk.
    if text.count("[") + text.count("{") <= limit:
        return False
    stack = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > limit:
            return True
        children = container.values() if isinstance(container, dict) else container
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json(text: str):
    """Parse any JSON value by the rules client frames follow, and refuse a key given twice in
    an object (operators' input: API bodies, the admin's messages).

    Rejected: invalid JSON, `NaN`/`Infinity`/`-Infinity`, numbers out of float range, integers
    over Python's digit limit, nesting deeper than MAX_NESTING_DEPTH, and duplicate keys.
    Accepted values always encode back (`encode`).

    Raises:
        InvalidJson: with a reason for people.
    """
    value = _loads(text, _UNIQUE_KEYS_DECODER)
    if isinstance(value, (dict, list)) and _nesting_over(text, value, MAX_NESTING_DEPTH):
        raise InvalidJson(_TOO_DEEP)
    return value


def parse_client_frame(
    text: str | None, data: bytes | None = None, *, max_bytes: int
) -> ClientFrame:
    """Decide what a client frame asks for.

    Args:
        text: the frame's text, for a text frame.
        data: the frame's payload, for a binary frame.
        max_bytes: the largest accepted message, in bytes (UTF-8 for text).
    """
    if text is None:
        size = len(data or b"")
        if size > max_bytes:
            return _too_big(size, max_bytes)
        return Rejected("binary_not_supported", "binary frames are not supported; send JSON text")
    if _utf8_length_over(text, max_bytes):
        return _too_big(len(text.encode("utf-8", "surrogatepass")), max_bytes)
    try:
        value = _loads(text)
    except InvalidJson as exc:
        return Rejected("invalid_json", str(exc))
    # Checked before the nesting, unlike parse_json: a deep array is "not_an_object".
    if not isinstance(value, dict):
        return Rejected("not_an_object", "message must be a JSON object with a 'type'")
    if _nesting_over(text, value, MAX_NESTING_DEPTH):
        return Rejected("invalid_json", _TOO_DEEP)
    kind = value.get("type")
    if kind == "ping":
        return _PING
    if kind == "info":
        return _INFO
    return Echo(value)


def _too_big(size: int, max_bytes: int) -> Rejected:
    return Rejected(
        "message_too_big",
        f"message is {size} bytes; the limit is {max_bytes}",
    )


class UnsendableData(ValueError):
    """Data that cannot be pushed to a client: `code` is "message_too_big" or "not_portable".

    `detail` is a predicate ("is 70000 bytes encoded; ..."): callers name the subject.
    """

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


# What the channel layer can carry: channels_redis serialises with msgpack, which has 64-bit
# integers and UTF-8 strings only.
_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1


def check_outgoing(data, *, max_bytes: int) -> None:
    """Check data an operator or service wants to push to a client (`message`).

    The size is measured as the server encodes it for the client, against the same limit
    as client messages.

    Raises:
        UnsendableData: over `max_bytes` encoded, or not carriable by the channel layer.
    """
    size = len(encode(data))  # ASCII: characters are bytes
    if size > max_bytes:
        raise UnsendableData(
            "message_too_big", f"is {size} bytes encoded; the limit is {max_bytes}"
        )
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif type(value) in (int, float) and not _MIN_INT <= value <= _MAX_INT:
            # A float that large is an integer too (1e30 and 10**30 are one JSON number, and
            # one to the API's schema): refused the same, whichever way it was written.
            raise UnsendableData(
                "not_portable",
                f"holds an integer outside the 64-bit range ({_MIN_INT}..{_MAX_INT}); "
                "send it as a string",
            )
        elif isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise UnsendableData(
                    "not_portable", "holds a string with a lone surrogate (\\ud800-\\udfff)"
                ) from None


def encode(payload: dict) -> str:
    # ASCII output: a client may send "\\ud800" (a lone surrogate), which has no UTF-8 form
    # and would fail at the transport if echoed raw.
    return _ENCODER.encode(payload)


def connected(connection: Connection) -> str:
    return encode({"type": "connected", **connection.public_fields()})


def pong(now: float | None = None) -> str:
    return encode({"type": "pong", "timestamp": isoformat(time.time() if now is None else now)})


def info(connection: Connection) -> str:
    return encode({"type": "info", **connection.public_fields()})


def echo(data: dict) -> str:
    return encode({"type": "echo", "data": data})


def error(code: str, detail: str) -> str:
    return encode({"type": "error", "code": code, "detail": detail})


def message(data) -> str:
    """Application data pushed to the client by an operator or a backend service."""
    return encode({"type": "message", "data": data})
