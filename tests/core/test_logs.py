"""logs.event: one event name, then key=value pairs that always split back into the same fields."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.core.logs import event

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
