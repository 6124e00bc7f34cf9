"""protocol: every client frame maps to one decision; every server message is one JSON object."""

import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.core import close_codes, protocol
from realtime.core.connection import Connection
from realtime.core.protocol import (
    MAX_NESTING_DEPTH,
    Echo,
    InfoRequest,
    Ping,
    Rejected,
    parse_client_frame,
)

LIMIT = 65536
ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def parse(text: str, max_bytes: int = LIMIT):
    return parse_client_frame(text, max_bytes=max_bytes)


def decode(frame: str) -> dict:
    """A server frame as a client reads it: ASCII-safe text holding exactly one JSON object."""
    frame.encode("utf-8")  # must be sendable as a text frame
    value = json.loads(frame, parse_constant=pytest.fail)
    assert isinstance(value, dict)
    return value


# -- parse_client_frame: decisions ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"ping"}',
        ' { "type" : "ping" } ',
        '{"type":"ping","id":7}',
        '{"type":"x","type":"ping"}',
    ],
)
def test_ping(text):
    assert parse(text) == Ping()


@pytest.mark.parametrize("text", ['{"type":"info"}', '{"type":"info","connection_id":"other"}'])
def test_info_request(text):
    assert parse(text) == InfoRequest()


@pytest.mark.parametrize(
    "text, data",
    [
        ('{"type":"chat","body":"hi"}', {"type": "chat", "body": "hi"}),
        ('{"type":"PING"}', {"type": "PING"}),
        ('{"type":"ping "}', {"type": "ping "}),
        ('{"type":"pong"}', {"type": "pong"}),
        ("{}", {}),
        ('{"body":[1,2.5,null,true]}', {"body": [1, 2.5, None, True]}),
        ('{"type":5}', {"type": 5}),
        ('{"type":null}', {"type": None}),
        ('{"type":["ping"]}', {"type": ["ping"]}),
        ('{"type":{"ping":1}}', {"type": {"ping": 1}}),
        ('{"type":true}', {"type": True}),
        ('{"n":1e-400}', {"n": 0.0}),
        ('{"n":1e308}', {"n": 1e308}),
        ('{"n":-0.0}', {"n": -0.0}),
        ('{"s":"caf\\u00e9 \\ud83d\\ude00"}', {"s": "café 😀"}),
        ('{"s":"\\ud800"}', {"s": "\ud800"}),
        ('{"\\udfff":"k"}', {"\udfff": "k"}),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_anything_else_is_echoed(text, data):
    assert parse(text) == Echo(data)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "{",
        '{"type":"ping"',
        "{'type':'ping'}",
        '{"a":1,}',
        "ping",
        '{"a":1}{"b":2}',
        '{"a":undefined}',
        "\ufeff{}",
        '{"a":"\x00"}',
        '{"a":01}',
    ],
)
def test_invalid_json_is_rejected_without_closing(text):
    result = parse(text)
    assert (result.code, result.close_code) == ("invalid_json", None)
    assert result.detail.startswith("message is not valid JSON: ")


@pytest.mark.parametrize(
    "text, detail",
    [
        ('{"a":NaN}', "NaN is not valid JSON"),
        ('{"a":Infinity}', "Infinity is not valid JSON"),
        ('{"a":-Infinity}', "-Infinity is not valid JSON"),
        ("NaN", "NaN is not valid JSON"),
        ('{"a":1e400}', "number 1e400 is out of range"),
        ('{"a":-1E400}', "number -1E400 is out of range"),
        ('{"a":[0.5,' + "9" * 400 + ".0]}", "number " + "9" * 20 + " is out of range"),
    ],
    ids=["nan", "infinity", "minus-infinity", "bare-nan", "1e400", "-1E400", "400-digit-float"],
)
def test_non_finite_numbers_are_rejected_not_echoed(text, detail):
    assert parse(text) == Rejected("invalid_json", detail)


def test_integer_beyond_the_digit_limit_is_invalid_json():
    result = parse('{"n":' + "1" * 5000 + "}")
    assert (result.code, result.close_code) == ("invalid_json", None)


def test_integer_within_the_digit_limit_echoes_exactly():
    digits = "9" * 4000
    result = parse('{"n":' + digits + "}")
    assert result == Echo({"n": int(digits)})
    assert decode(protocol.echo(result.data))["data"]["n"] == int(digits)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100000,
        '{"a":' * 100000,
        "[" * 100000 + "]" * 100000,
        '{"a":' * 50000 + "1" + "}" * 50000,
    ],
    ids=["open-arrays", "open-objects", "closed-arrays", "closed-objects"],
)
def test_pathologically_deep_nesting_is_invalid_json_without_raising(text):
    result = parse(text, max_bytes=10**6)
    assert (result.code, result.close_code) == ("invalid_json", None)


def nested(depth: int) -> str:
    """An object holding arrays, `depth` containers deep in all."""
    return '{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_nesting_at_the_limit_is_echoed_and_the_echo_encodes():
    result = parse(nested(MAX_NESTING_DEPTH))
    assert isinstance(result, Echo)
    assert decode(protocol.echo(result.data))["data"] == result.data


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 1000, 1200, 1490])
def test_nesting_over_the_limit_is_rejected(depth):
    # Regression: 1000..1497 levels parsed, then echo() raised RecursionError in json.dumps.
    assert parse(nested(depth), max_bytes=10**6) == Rejected(
        "invalid_json", f"message is nested too deeply (more than {MAX_NESTING_DEPTH} levels)"
    )


def test_nesting_is_measured_on_structure_not_on_bracket_characters():
    text = json.dumps({"type": "chat", "body": "[{" * 5000})
    assert parse(text) == Echo({"type": "chat", "body": "[{" * 5000})


def test_deepest_branch_decides_nesting():
    # The outer object and "b" are two levels: "c" may hold MAX_NESTING_DEPTH - 2 more.
    wide = {"a": [[]] * 300, "b": {"c": json.loads(nested(MAX_NESTING_DEPTH - 2))}}
    assert parse(json.dumps(wide)) == Echo(wide)
    wide["b"]["c"] = json.loads(nested(MAX_NESTING_DEPTH - 1))
    assert parse(json.dumps(wide)).code == "invalid_json"


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '[{"type":"ping"}]',
        '"ping"',
        '"{}"',
        "0",
        "-1.5",
        "1e5",
        "null",
        "true",
        "false",
        " [ ] ",
    ],
)
def test_json_that_is_not_an_object_is_rejected(text):
    assert parse(text) == Rejected("not_an_object", "message must be a JSON object with a 'type'")


# -- parse_client_frame: sizes and binary --------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"{}", b'{"type":"ping"}', b"\xff" * 100])
def test_binary_frame_is_not_supported_but_not_closed(data):
    assert parse_client_frame(None, data, max_bytes=100) == Rejected(
        "binary_not_supported", "binary frames are not supported; send JSON text"
    )


def test_binary_frame_at_the_limit_is_only_not_supported():
    assert parse_client_frame(None, b"x" * 100, max_bytes=100).code == "binary_not_supported"


def test_binary_frame_over_the_limit_is_too_big_and_closes():
    assert parse_client_frame(None, b"x" * 101, max_bytes=100) == Rejected(
        "message_too_big", "message is 101 bytes; the limit is 100", 1009
    )
    assert close_codes.MESSAGE_TOO_BIG == 1009


def padded(size: int, char: str = "a") -> str:
    """A ping of exactly `size` UTF-8 bytes, padded with `char`."""
    head, tail = '{"type":"ping","pad":"', '"}'
    room = size - len(head) - len(tail)
    width = len(char.encode("utf-8"))
    assert room % width == 0
    return head + char * (room // width) + tail


@pytest.mark.parametrize(
    "char", ["a", "é", "€", "😀"], ids=["1-byte", "2-byte", "3-byte", "4-byte"]
)
def test_text_exactly_at_the_limit_is_accepted(char):
    size = 24 + 12 * len(char.encode("utf-8"))  # a multiple of 1, 2, 3 and 4 over the frame
    text = padded(size, char)
    assert len(text.encode("utf-8")) == size
    assert parse(text, max_bytes=size) == Ping()


@pytest.mark.parametrize(
    "char", ["a", "é", "€", "😀"], ids=["1-byte", "2-byte", "3-byte", "4-byte"]
)
def test_text_one_byte_over_the_limit_is_too_big_and_closes(char):
    size = 24 + 12 * len(char.encode("utf-8"))
    text = padded(size, char)
    assert parse(text, max_bytes=size - 1) == Rejected(
        "message_too_big", f"message is {size} bytes; the limit is {size - 1}", 1009
    )


def test_text_size_counts_utf8_bytes_not_characters():
    text = padded(4 * 16 + 24, "😀")  # 16 characters of padding, 64 bytes
    assert len(text) < 64 and parse(text, max_bytes=64).code == "message_too_big"


def test_oversized_text_is_refused_before_parsing():
    assert parse("[" * 101, max_bytes=100).code == "message_too_big"


def test_default_limit_of_65536_bytes():
    assert parse(padded(65536), max_bytes=65536) == Ping()
    assert parse(padded(65537), max_bytes=65536).close_code == close_codes.MESSAGE_TOO_BIG


# -- lone surrogates -------------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\udc00\\ud800", "a\\ud83d"])
def test_lone_surrogate_echoes_as_ascii_json(escape):
    result = parse('{"s":"' + escape + '"}')
    frame = protocol.echo(result.data)
    assert frame.isascii()
    assert frame.encode("utf-8")
    assert decode(frame) == {"type": "echo", "data": {"s": json.loads('"' + escape + '"')}}


def test_non_ascii_is_escaped_in_every_frame():
    assert (
        protocol.echo({"s": "café 😀"})
        == '{"type":"echo","data":{"s":"caf\\u00e9 \\ud83d\\ude00"}}'
    )


# -- builders ------------------------------------------------------------------------------


@pytest.fixture
def connection():
    return Connection(
        connection_id="6f1c1a4e-0000-4000-8000-000000000001",
        tenant="acme",
        deployment_id="prod-1",
        connection_type="browser",
        connected_at="2026-01-31T12:00:00.000Z",
        expires_at=1769864400,  # 2026-01-31T13:00:00Z
        instance_id="instance-a",
        channel_name="specific.abc!def",
        client_addr="203.0.113.9:51000",
    )


PUBLIC = {
    "connection_id": "6f1c1a4e-0000-4000-8000-000000000001",
    "tenant": "acme",
    "deployment_id": "prod-1",
    "connection_type": "browser",
    "connected_at": "2026-01-31T12:00:00.000Z",
    "expires_at": "2026-01-31T13:00:00.000Z",
}


def test_connected_carries_the_public_fields(connection):
    assert decode(protocol.connected(connection)) == {"type": "connected", **PUBLIC}


def test_info_carries_the_public_fields(connection):
    assert decode(protocol.info(connection)) == {"type": "info", **PUBLIC}


def test_connection_internals_never_reach_the_client(connection):
    for frame in (protocol.connected(connection), protocol.info(connection)):
        assert "instance-a" not in frame and "specific.abc" not in frame
        assert "203.0.113.9" not in frame


def test_pong_carries_the_given_time_as_iso_8601_utc():
    assert protocol.pong(1769860800.25) == '{"type":"pong","timestamp":"2026-01-31T12:00:00.250Z"}'


def test_pong_defaults_to_now():
    before = datetime.now(UTC)
    timestamp = decode(protocol.pong())["timestamp"]
    after = datetime.now(UTC)
    assert ISO_Z.fullmatch(timestamp)
    parsed = datetime.fromisoformat(timestamp)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= parsed <= after


def test_echo_puts_the_original_under_data():
    assert protocol.echo({"type": "chat", "n": [1, None]}) == (
        '{"type":"echo","data":{"type":"chat","n":[1,null]}}'
    )


def test_echo_of_a_message_that_claims_another_type_keeps_type_echo():
    assert decode(protocol.echo({"type": "connected"}))["type"] == "echo"


def test_error_has_code_and_detail():
    assert protocol.error("invalid_json", 'bad "x"\n') == (
        '{"type":"error","code":"invalid_json","detail":"bad \\"x\\"\\n"}'
    )


@pytest.mark.parametrize("data", [{"k": "v"}, [1, 2], "text", 3, None, {"type": "ping"}])
def test_message_wraps_any_json_value(data):
    assert decode(protocol.message(data)) == {"type": "message", "data": data}


def test_encode_is_compact():
    assert protocol.encode({"a": [1, {"b": 2}]}) == '{"a":[1,{"b":2}]}'


def test_encode_refuses_non_finite_numbers():
    with pytest.raises(ValueError):
        protocol.encode({"x": float("nan")})


# -- properties ----------------------------------------------------------------------------

DECISIONS = (Ping, InfoRequest, Echo, Rejected)
CODES = {"invalid_json", "not_an_object", "binary_not_supported", "message_too_big"}


def assert_one_decision(result) -> None:
    assert isinstance(result, DECISIONS)
    if isinstance(result, Rejected):
        assert result.code in CODES
        assert result.close_code in (None, close_codes.MESSAGE_TOO_BIG)
    if isinstance(result, Echo):
        decode(protocol.echo(result.data))


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=0, max_value=64))
def test_any_text_gives_one_decision(text, max_bytes):
    assert_one_decision(parse_client_frame(text, max_bytes=max_bytes))
    assert_one_decision(parse_client_frame(text, max_bytes=LIMIT))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}[]":,0123456789.eE+-tnrufalsNIy \\u', max_size=60))
def test_any_json_like_text_gives_one_decision(text):
    assert_one_decision(parse_client_frame(text, max_bytes=LIMIT))


@settings(max_examples=300, deadline=None)
@given(st.binary(), st.integers(min_value=0, max_value=64))
def test_any_binary_gives_one_decision(data, max_bytes):
    result = parse_client_frame(None, data, max_bytes=max_bytes)
    expected = "message_too_big" if len(data) > max_bytes else "binary_not_supported"
    assert result.code == expected


keys = st.text(max_size=8) | st.just("type")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["ping", "info"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=15,
)
json_objects = st.dictionaries(keys, json_values, max_size=5)


@settings(max_examples=300, deadline=None)
@given(json_objects)
def test_any_json_object_round_trips_through_echo(data):
    text = json.dumps(data, ensure_ascii=False)
    result = parse_client_frame(text, max_bytes=10**6)
    if data.get("type") in ("ping", "info"):
        assert result == (Ping() if data["type"] == "ping" else InfoRequest())
        return
    assert result == Echo(data)
    assert decode(protocol.echo(result.data)) == {"type": "echo", "data": data}
