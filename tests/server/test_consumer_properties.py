"""Property tests of ConnectionConsumer (hypothesis), in-process against moto's mock.

Whatever a client puts in its handshake or sends afterwards, it gets one of the documented
outcomes (README, "Errors and close codes"), the consumer never raises, and the registry
stays exact: one item while the connection is open, none before `connected`, after a
refusal, or after the disconnect.

The oracles here are written from the README's rules, not from the code: for a handshake,
the set of refusal codes that the generated defects make applicable (the server may report
any one of them; it must connect exactly when there is none); for a frame, the one answer
the protocol table gives it.
"""

import asyncio
import json
import math
import string
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import jwt
import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from realtime.core.handshake import MAX_QUERY_STRING_BYTES, PARAMETERS, is_valid_value
from realtime.core.leases import LEASE_KEY_PREFIX
from realtime.core.protocol import MAX_NESTING_DEPTH
from realtime.server.consumer import ConnectionConsumer
from realtime.server.runtime import runtime

# Every refusal a handshake can get, with its close code (README, "Errors and close codes").
HANDSHAKE_REFUSALS = {
    "missing_parameter": 4400,
    "repeated_parameter": 4400,
    "invalid_parameter": 4400,
    "invalid_encoding": 4400,
    "query_too_long": 4400,
    "token_missing": 4401,
    "token_invalid": 4401,
    "token_expired": 4401,
    "connection_type_not_allowed": 4403,
    "origin_not_allowed": 4403,
    "token_mismatch": 4403,
}
ALLOWED_TYPES = frozenset({"client", "worker"})
ALLOWED_ORIGIN = "https://app.example.com"
SECRET = "properties-secret-" + "0123456789abcdef" * 3  # 64: long enough for HS512 too
VALID = {"tenant": "acme", "deployment_id": "prod-1", "connection_type": "client"}

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=100,
    deadline=None,
    # One moto table for all examples: each example starts by emptying it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def registry(aws):
    registry = runtime().registry
    registry.create_table()
    return registry


def stored(registry) -> dict[str, dict]:
    """The connection items in the table (not this instance's lease)."""
    items = registry.client.scan(TableName=registry.table_name)["Items"]
    found = {item["connection_id"]["S"]: item for item in items}
    return {cid: item for cid, item in found.items() if not cid.startswith(LEASE_KEY_PREFIX)}


def empty_table(registry) -> None:
    for connection_id in stored(registry):
        registry.deregister(connection_id)


def communicator(query_string: bytes, headers=()) -> WebsocketCommunicator:
    client = WebsocketCommunicator(ConnectionConsumer.as_asgi(), "/", headers=list(headers))
    # The raw bytes a server would pass on, not a str that WebsocketCommunicator encodes.
    client.scope["query_string"] = query_string
    return client


async def handshake(client: WebsocketCommunicator) -> tuple[dict, int | None]:
    """Connect; returns the first message and, for a refusal, the close code that follows."""
    connected, _ = await client.connect(timeout=5)
    assert connected  # refusals are accepted first, so that the client can read why
    first = json.loads((await client.receive_output(timeout=5))["text"])
    if first["type"] == "connected":
        return first, None
    closed = await client.receive_output(timeout=5)
    assert closed["type"] == "websocket.close", closed
    return first, closed["code"]


# --- handshakes: query strings built from parts whose defects are known ----------------------

SAFE = string.ascii_letters + string.digits + "._-"
valid_values = st.from_regex(r"[A-Za-z0-9._-]{1,128}", fullmatch=True)
# Text that survives UTF-8 (no lone surrogates), as a percent-encoded value can carry.
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
invalid_values = st.one_of(
    st.just(""),
    st.text(SAFE, min_size=129, max_size=200),
    any_text.filter(lambda value: not is_valid_value(value)),
    st.sampled_from(["a#b", "a b", "a+b", "é", "a/b", "%zz", "a\x00", "tenant=x"]),
)


def encode(text: str, how: str) -> str:
    """`text` as it may appear in a query string, decoding back to exactly `text`."""
    if how == "plain" and all(c in SAFE for c in text):
        return text
    if how == "percent-all":
        return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))
    return quote(text, safe="")


@dataclass
class Query:
    """Pairs of the query string with what they decode to, and the defects they carry."""

    parts: list[str] = field(default_factory=list)
    decoded: list[tuple[str, str]] = field(default_factory=list)
    codes: set[str] = field(default_factory=set)

    def add(self, name: str, value: str | None, how: str, *, raw: str | None = None) -> None:
        if raw is not None:
            self.parts.append(raw)
        elif value is None:  # a bare name: a blank value
            self.parts.append(encode(name, how))
        else:
            self.parts.append(f"{encode(name, how)}={encode(value, how)}")
        self.decoded.append((name, "" if value is None else value))

    def raw(self) -> bytes:
        return "&".join(self.parts).encode("utf-8")


PARAMETER_DEFECTS = ("missing", "repeated", "invalid", "bare", "encoding")
TOKEN_DEFECTS = (
    *("missing", "empty", "repeated", "garbage", "over-long", "expired", "other-secret"),
    *("mismatch", "audience", "future-iat", "hs512", "no-exp"),
)
ORIGIN_DEFECTS = ("none", "other", "two", "malformed")
OTHER_ORIGINS = (
    *(b"https://evil.example.com", b"http://app.example.com", b"https://app.example.com:8443"),
    *(b"http://[::1", b"https://a:99999", b"null", b""),
)


def kind_of(case: str, possible: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A kind of input: `case` itself, or for "any", "valid" or one of `possible`."""
    return st.sampled_from(("valid", *possible)) if case == "any" else st.just(case)


@st.composite
def queries(draw, *, defect: str = "any", token: str | None = None) -> tuple[bytes, Query]:
    """A query string, and what it holds.

    defect: "valid" (at times exactly MAX_QUERY_STRING_BYTES long), one of
    PARAMETER_DEFECTS (in one drawn parameter), "not-allowed" (a connection_type outside
    WS_CONNECTION_TYPES), "length" (over the limit), or "any" (each parameter valid or not).
    token: None (no token; a `token` parameter may still be there, ignored), "valid", one
    of TOKEN_DEFECTS, or "any".
    """
    query = Query()
    how = st.sampled_from(["plain", "quote", "percent-all"])
    target = "connection_type" if defect == "not-allowed" else draw(st.sampled_from(PARAMETERS))
    for name in PARAMETERS:
        possible = PARAMETER_DEFECTS + (("not-allowed",) if name == "connection_type" else ())
        if defect == "any":
            mode = draw(kind_of("any", possible))
        elif name == target and (defect in PARAMETER_DEFECTS or defect == "not-allowed"):
            mode = defect
        else:
            mode = "valid"
        if name != "connection_type" or mode == "not-allowed" or defect == "any":
            value = draw(valid_values)
        else:
            value = draw(st.sampled_from(sorted(ALLOWED_TYPES)))
        if mode == "not-allowed":
            value = draw(valid_values.filter(lambda v: v not in ALLOWED_TYPES))
        if mode in ("valid", "not-allowed"):
            query.add(name, value, draw(how))
        elif mode == "missing":
            query.codes.add("missing_parameter")
        elif mode == "repeated":
            for _ in range(draw(st.integers(2, 3))):
                query.add(name, draw(st.one_of(st.just(value), valid_values)), draw(how))
            query.codes.add("repeated_parameter")
        elif mode in ("invalid", "bare"):
            query.add(name, draw(invalid_values) if mode == "invalid" else None, draw(how))
            query.codes.add("invalid_parameter")
        else:  # a raw non-ASCII byte, or percent-encoded bytes that are not UTF-8
            bad = draw(st.sampled_from(["é", "%FF", "%C3%28", "\x80"]))
            query.add(name, value, "plain", raw=f"{name}={value}{bad}")
            query.codes.add("invalid_encoding")
    # Parameters the server ignores, some named like ours but not quite.
    for _ in range(draw(st.integers(0, 3))):
        extra = draw(
            st.one_of(
                st.text(SAFE, min_size=1, max_size=10),
                st.sampled_from(["Tenant", "tenant_", "connection-type", "token_"]),
            ).filter(lambda name: name not in (*PARAMETERS, "token"))
        )
        query.add(extra, draw(any_text), draw(how))
    if token is None and draw(st.booleans()):  # with auth off, `token` is just ignored
        for _ in range(draw(st.integers(1, 2))):
            query.add("token", draw(any_text), draw(how))
    values = [[v for n, v in query.decoded if n == name] for name in PARAMETERS]
    if all(len(v) == 1 and is_valid_value(v[0]) for v in values) and (
        values[2][0] not in ALLOWED_TYPES
    ):
        query.codes.add("connection_type_not_allowed")
    if token is not None:
        draw_token(draw, query, values, draw(kind_of(token, TOKEN_DEFECTS)))
    # Padding: to the length limit exactly (valid), over it, or anywhere (defect "any").
    length = len(query.raw()) + (1 if query.parts else 0) + len("pad=")
    if defect == "length":
        padding = MAX_QUERY_STRING_BYTES - length + draw(st.integers(1, 100))
    elif defect == "valid" and draw(st.booleans()):
        padding = MAX_QUERY_STRING_BYTES - length
    elif defect == "any" and draw(st.booleans()):
        padding = draw(st.integers(0, MAX_QUERY_STRING_BYTES + 100))
    else:
        padding = -1
    if padding >= 0:
        query.add("pad", "x" * padding, "plain")
    if len(query.raw()) > MAX_QUERY_STRING_BYTES:
        query.codes.add("query_too_long")
    order = draw(st.permutations(range(len(query.parts))))
    shuffled = Query(
        [query.parts[i] for i in order], [query.decoded[i] for i in order], query.codes
    )
    return shuffled.raw(), shuffled


def draw_token(draw, query: Query, values: list[list[str]], kind: str) -> None:
    """Add a `token` of the given kind, and the refusal codes it makes applicable."""
    now = int(time.time())
    own = {name: v[0] if v else "x" for name, v in zip(PARAMETERS, values, strict=True)}
    claims_match = all(len(v) == 1 for v in values)
    if not all(is_valid_value(value) for value in own.values()):
        own, claims_match = dict(VALID), False  # a token can only name valid values
    claims = {**own, "iat": now, "exp": now + 600}
    secret, algorithm = SECRET, "HS256"
    codes: set[str] = set()
    if kind == "missing":
        query.codes.add("token_missing")
        return
    if kind == "empty":
        query.add("token", "", "plain")
        query.codes.add("token_missing")
        return
    if kind == "garbage":
        query.add("token", draw(any_text), draw(st.sampled_from(["plain", "quote"])))
        query.codes.update({"token_invalid", "token_missing"})  # "" is a missing token
        return
    if kind == "expired":
        claims.update(iat=now - 7200, exp=now - 3600)
        codes.add("token_expired")
    elif kind == "other-secret":
        secret = SECRET[::-1]
        codes.add("token_invalid")
    elif kind == "mismatch":
        name = draw(st.sampled_from(PARAMETERS))
        claims[name] = "z" + own[name][:127]  # valid, and never the query's
        codes.add("token_mismatch")
    elif kind == "audience":
        claims["aud"] = "someone-else"
        codes.add("token_invalid")
    elif kind == "future-iat":
        claims["iat"] = now + 3600
        codes.add("token_invalid")
    elif kind == "hs512":
        algorithm = "HS512"
        codes.add("token_invalid")
    elif kind == "no-exp":
        del claims["exp"]
        codes.add("token_invalid")
    elif kind == "over-long":
        claims["pad"] = "x" * 2048
        codes.add("token_invalid")
    token = jwt.encode(claims, secret, algorithm=algorithm)
    if not claims_match:
        codes.add("token_mismatch")
    query.add("token", token, draw(st.sampled_from(["plain", "percent-all"])))
    if kind == "repeated":
        query.add("token", token, "plain")
        codes.add("repeated_parameter")
    query.codes.update(codes)


@st.composite
def origins(draw, case: str = "any") -> tuple[list[tuple[bytes, bytes]], set[str]]:
    """Origin headers of a kind ("valid", one of ORIGIN_DEFECTS, "any"), and the refusal
    codes they make applicable (with WS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN])."""
    kind = draw(kind_of(case, ORIGIN_DEFECTS))
    if kind == "valid":
        allowed = draw(st.sampled_from([ALLOWED_ORIGIN, ALLOWED_ORIGIN.upper()]))
        return [(b"origin", allowed.encode())], set()
    if kind == "none":
        return [], {"origin_not_allowed"}
    if kind == "two":
        return [(b"origin", ALLOWED_ORIGIN.encode())] * 2, {"origin_not_allowed"}
    if kind == "other":
        other = draw(st.sampled_from(OTHER_ORIGINS))
    else:
        other = draw(st.binary(max_size=30))
    return [(b"origin", other)], {"origin_not_allowed"}


def check_handshake(registry, raw: bytes, headers=(), applicable: set[str] | None = None):
    """Run one handshake; check its outcome, the registry, and that the consumer ends cleanly.

    `applicable`: the refusal codes the query's known defects allow (None: not known).
    Returns the first message.
    """
    empty_table(registry)

    async def scenario():
        client = communicator(raw, headers)
        first, close_code = await handshake(client)
        if first["type"] == "connected":
            items = stored(registry)
            assert items.keys() == {first["connection_id"]}
            item = items[first["connection_id"]]
            for name in PARAMETERS:  # stored exactly as the client was told
                assert item[name] == {"S": first[name]}
            assert len(runtime().keeper) == 1
        else:
            assert first["type"] == "error", first
            assert close_code == HANDSHAKE_REFUSALS.get(first["code"]), first
            assert stored(registry) == {}
            assert await client.receive_nothing(timeout=0.01)
        await client.disconnect()  # raises whatever the consumer raised
        return first

    first = asyncio.run(scenario())
    event(f"outcome: {first.get('code', first['type'])}")
    assert stored(registry) == {}
    assert len(runtime().keeper) == 0
    if applicable is not None:
        if applicable:
            assert first["type"] == "error" and first["code"] in applicable, (first, applicable)
        else:
            assert first["type"] == "connected", first
    return first


VALID_QUERY = b"tenant=acme&deployment_id=prod-1&connection_type=client"
query_bytes = st.one_of(
    st.binary(max_size=300),
    # Query-string characters only, so that some parse.
    st.text("tenantdeploymet_idconctiyp=&%+.-0123456789ABCDEFabcdef", max_size=200).map(str.encode),
    st.tuples(st.binary(max_size=100), st.booleans()).map(
        lambda case: VALID_QUERY + b"&" + case[0] if case[1] else case[0] + b"&" + VALID_QUERY
    ),
)


@given(raw=query_bytes)
@PROPERTY_SETTINGS
def test_any_bytes_as_a_query_string_get_a_documented_outcome(registry, settings, raw):
    settings.WS_CONNECTION_TYPES = ALLOWED_TYPES
    check_handshake(registry, raw)


# Every example tries every kind of query: hypothesis varies the rest (values, encodings,
# other parameters, order), and each documented code is certain to come up.
QUERY_CASES = ("valid", *PARAMETER_DEFECTS, "not-allowed", "length", "any")
ONE_CODE = {
    "valid": set(),
    "missing": {"missing_parameter"},
    "repeated": {"repeated_parameter"},
    "invalid": {"invalid_parameter"},
    "bare": {"invalid_parameter"},
    "encoding": {"invalid_encoding"},
    "not-allowed": {"connection_type_not_allowed"},
    "length": {"query_too_long"},
}
CASES_SETTINGS = hypothesis_settings(PROPERTY_SETTINGS, max_examples=10)


def check_connected_fields(first: dict, query: Query) -> None:
    if first["type"] == "connected":
        for name in PARAMETERS:
            assert first[name] == next(v for n, v in query.decoded if n == name)


@given(data=st.data())
@CASES_SETTINGS
def test_built_query_strings_connect_exactly_when_valid(registry, settings, data):
    settings.WS_CONNECTION_TYPES = ALLOWED_TYPES
    for case in QUERY_CASES:
        raw, query = data.draw(queries(defect=case), label=case)
        if case in ONE_CODE:
            assert query.codes == ONE_CODE[case]  # the generator made what it was asked for
        check_connected_fields(check_handshake(registry, raw, applicable=query.codes), query)


AUTH_CASES = (
    "valid",
    *(f"token:{kind}" for kind in TOKEN_DEFECTS),
    *(f"origin:{kind}" for kind in ORIGIN_DEFECTS),
    "any",
)


@given(data=st.data())
@CASES_SETTINGS
def test_tokens_and_origins_connect_exactly_when_all_is_valid(registry, settings, data):
    settings.WS_CONNECTION_TYPES = ALLOWED_TYPES
    settings.WS_AUTH = "signed"
    settings.WS_TOKEN_SECRET = SECRET
    settings.WS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN]
    for case in AUTH_CASES:
        where, _, kind = case.partition(":")
        raw, query = data.draw(
            queries(
                defect="any" if case == "any" else "valid",
                token={"any": "any", "token": kind}.get(where, "valid"),
            ),
            label=case,
        )
        headers, origin_codes = data.draw(
            origins({"any": "any", "origin": kind}.get(where, "valid")), label=f"{case} origin"
        )
        applicable = query.codes | origin_codes
        if case == "valid":
            assert applicable == set()
        elif case != "any":
            assert applicable  # the generator made what it was asked for
        check_connected_fields(check_handshake(registry, raw, headers, applicable), query)


# --- frames after `connected` -----------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
types = st.one_of(
    st.sampled_from(["ping", "info"]),
    st.sampled_from(["echo", "chat", "", "PING", "ping ", "connected", "error", "pong"]),
    json_values,
)
objects = st.builds(
    lambda kind, rest, with_type: {**rest, "type": kind} if with_type else rest,
    types,
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    st.booleans(),
)
odd_texts = st.sampled_from(
    [
        '{"type": "ping"}',
        '{"type":"info"}',
        '{"type": "ping", "connection_id": "someone-else"}',
        '{"type": "info", "connection_id": "someone-else"}',
        "",
        " ",
        "NaN",
        '{"type": "ping", "n": NaN}',
        '{"type": "x", "n": Infinity}',
        '{"n": 1e999}',
        '{"type": "ping"',
        '{"type": "ping"}{}',
        '{"type": "ping"} ',
        '{"a": 1, "a": 2}',
        "[" * 200 + "]" * 200,
        '{"a":' * (MAX_NESTING_DEPTH + 1) + "1" + "}" * (MAX_NESTING_DEPTH + 1),
        '{"a":' * (MAX_NESTING_DEPTH - 1) + "1" + "}" * (MAX_NESTING_DEPTH - 1),
        "[" * 3000 + "]" * 3000,
        '{"n": ' + "9" * 5000 + "}",
        '"\\ud800"',
        '{"type": "\\ud800"}',
    ]
)


def dumped(value, ascii_only: bool) -> str:
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a text frame is UTF-8: lone surrogates travel escaped only
        return json.dumps(value)
    return text


frames = st.one_of(
    st.builds(dumped, objects, st.booleans()),
    st.builds(dumped, json_values, st.booleans()),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=60),
    odd_texts,
    st.binary(max_size=100),
    # Around the small limits the test sets (40 and 256 bytes).
    st.binary(min_size=30, max_size=300),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=30, max_size=300),
)


def finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return True


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def expected_answer(frame: str | bytes, max_bytes: int) -> tuple[str, object]:
    """The protocol table's answer to one frame: (kind, data) where kind is pong, info,
    echo (data: the parsed object) or an error code."""
    if isinstance(frame, bytes):
        return ("message_too_big" if len(frame) > max_bytes else "binary_not_supported"), None
    if len(frame.encode("utf-8", "surrogatepass")) > max_bytes:
        return "message_too_big", None
    try:
        value = json.loads(frame)
    except (ValueError, RecursionError):
        return "invalid_json", None
    if not finite(value):
        return "invalid_json", None
    if not isinstance(value, dict):
        return "not_an_object", None
    if depth(value) > MAX_NESTING_DEPTH:
        return "invalid_json", None
    kind = value.get("type")
    if kind == "ping":
        return "pong", None
    if kind == "info":
        return "info", None
    return "echo", value


def answer_kind(message: dict) -> str:
    return message["code"] if message["type"] == "error" else message["type"]


# Each answer at least once, whatever hypothesis draws.
@example(sent=[b"\x00" * 41], max_bytes=40, rate=None)
@example(
    sent=['{"type": "info"}', '{"type": "ping"}', b"", "", "[]", '{"n": NaN}', "x" * 41],
    max_bytes=40,
    rate=None,
)
@example(sent=['{"type": "ping"}'] * 6, max_bytes=65536, rate=(2, 3))
@given(
    sent=st.lists(frames, min_size=1, max_size=15),
    max_bytes=st.sampled_from([65536, 256, 40]),
    rate=st.sampled_from([None, (1, 1), (2, 3), (4, 2)]),
)
@PROPERTY_SETTINGS
def test_any_frames_get_one_documented_answer_each(registry, settings, sent, max_bytes, rate):
    """`rate`: None for no limit, or (burst, abuse) with a rate so low that nothing refills
    during the example: frames after the burst are refused, and the abuse-th refusal after
    those closes with 1008."""
    settings.WS_MAX_MESSAGE_BYTES = max_bytes
    if rate is None:
        settings.WS_RATE_PER_SECOND = 0
    else:
        settings.WS_RATE_PER_SECOND = 0.0001
        settings.WS_RATE_BURST, settings.WS_RATE_ABUSE = rate
    empty_table(registry)

    async def scenario():
        client = communicator(b"tenant=acme&deployment_id=prod-1&connection_type=client")
        first, _ = await handshake(client)
        assert first["type"] == "connected", first
        connection_id = first["connection_id"]
        for number, frame in enumerate(sent):
            key = "bytes" if isinstance(frame, bytes) else "text"
            await client.send_input({"type": "websocket.receive", key: frame})
            message = json.loads((await client.receive_output(timeout=5))["text"])
            kind, data = expected_answer(frame, max_bytes)
            close_code = 1009 if kind == "message_too_big" else None
            if rate is not None and number >= rate[0]:  # over the burst
                kind, data = "rate_limited", None
                close_code = 1008 if number - rate[0] + 1 > rate[1] else None
            assert answer_kind(message) == kind, (frame, message)
            event(f"answer: {kind}{' (binary)' if key == 'bytes' else ''}")
            if kind == "echo":
                assert message["data"] == data
            if kind == "info":
                assert message["connection_id"] == connection_id
            # Open, or closed by the server but not yet by the client: registered either way.
            assert stored(registry).keys() == {connection_id}
            if close_code is not None:
                closed = await client.receive_output(timeout=5)
                assert closed == {"type": "websocket.close", "code": close_code, "reason": kind}
                break
            assert await client.receive_nothing(timeout=0)
        await client.disconnect()  # raises whatever the consumer raised

    asyncio.run(scenario())
    assert stored(registry) == {}
    assert len(runtime().keeper) == 0
