"""logs.event: one event name, then key=value pairs that always split back into the same fields."""

import json
import logging
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.core.logs import TokenRedactor, event

# A field is key=plain or key="JSON string": the quoted form may hold spaces, '=' and '\"'.
FIELD = re.compile(r' ([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"]+)')


def split(line: str) -> tuple[str, dict[str, str]]:
    """Read a log line back the way a log pipeline would; fails on anything it cannot read."""
    name, _, rest = line.partition(" ")
    rest = " " + rest if rest else ""
    fields, position = {}, 0
    while position < len(rest):
        match = FIELD.match(rest, position)
        assert match, f"unparseable at {position}: {rest[position:]!r}"
        key, value = match.groups()
        fields[key] = json.loads(value) if value.startswith('"') else value
        position = match.end()
    return name, fields


def test_event_without_fields_is_the_name():
    assert event("server.started") == "server.started"


@pytest.mark.parametrize(
    "value, rendered",
    [
        ("acme", "acme"),
        ("prod-1.eu_west", "prod-1.eu_west"),
        ("127.0.0.1:8765", "127.0.0.1:8765"),
        ("[::1]:51000", "[::1]:51000"),
        ("specific.abc!def", '"specific.abc!def"'),
        ("user@host/path#frag", "user@host/path#frag"),
        (42, "42"),
        (1.5, "1.5"),
        (None, "None"),
        (True, "True"),
        ("", '""'),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("tab\there", '"tab\\there"'),
        ("back\\slash", '"back\\\\slash"'),
        ("café", '"caf\\u00e9"'),
        ("\x00", '"\\u0000"'),
    ],
)
def test_value_rendering(value, rendered):
    assert event("e", k=value) == f"e k={rendered}"


def test_fields_keep_their_order():
    assert event("connection.opened", connection_id="c1", tenant="acme", client="1.2.3.4:5") == (
        "connection.opened connection_id=c1 tenant=acme client=1.2.3.4:5"
    )


def test_forged_field_inside_a_value_stays_one_field():
    line = event("connection.rejected", reason='x tenant=evil" other="1', client="a")
    assert split(line) == (
        "connection.rejected",
        {"reason": 'x tenant=evil" other="1', "client": "a"},
    )


def test_newline_in_a_value_never_breaks_the_line():
    line = event("e", error="first\nsecond\r\nthird\u2028")
    assert "\n" not in line and "\r" not in line and line.isascii()
    assert split(line)[1] == {"error": "first\nsecond\r\nthird\u2028"}


def test_exception_values_are_rendered_as_their_message():
    assert event("e", error=ValueError("bad value: x=1")) == 'e error="bad value: x=1"'


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12),
        st.text() | st.integers() | st.booleans(),
        max_size=6,
    )
)
def test_any_fields_split_back_into_the_same_fields(fields):
    line = event("some.event", **fields)
    assert "\n" not in line
    assert split(line) == ("some.event", {k: str(v) for k, v in fields.items()})


# --- TokenRedactor ----------------------------------------------------------------------------


def redacted(message: str, *args) -> str:
    record = logging.LogRecord("any", logging.INFO, __file__, 1, message, args or None, None)
    TokenRedactor().filter(record)
    return record.getMessage()


def test_a_token_in_a_query_string_is_redacted_wherever_it_stands():
    assert redacted('%s - "WebSocket %s" [accepted]', "1.2.3.4:5", "/?a=1&token=eyJ.x.y&b=2") == (
        '1.2.3.4:5 - "WebSocket /?a=1&token=[redacted]&b=2" [accepted]'
    )
    assert redacted("GET /?token=abc HTTP/1.1") == "GET /?token=[redacted] HTTP/1.1"


def test_a_bearer_token_is_redacted_in_any_case():
    assert redacted("Authorization: Bearer s3cret") == "Authorization: Bearer [redacted]"
    assert redacted("authorization: bearer s3cret") == "authorization: bearer [redacted]"


def test_a_line_without_a_token_is_left_alone():
    record = logging.LogRecord("any", logging.INFO, __file__, 1, "n=%d", (5,), None)
    TokenRedactor().filter(record)
    assert (record.msg, record.args) == ("n=%d", (5,))


def test_a_token_in_a_traceback_is_redacted():
    try:
        raise ValueError("bad url /?tenant=a&token=eyJ.x.y")
    except ValueError:
        record = logging.LogRecord(
            "any", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    TokenRedactor().filter(record)
    assert "eyJ.x.y" not in record.exc_text and "token=[redacted]" in record.exc_text
