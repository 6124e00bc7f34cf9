"""handshake.parse_connection_request: the query-string rules of DESIGN.md section 2."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime import close_codes
from realtime.handshake import (
    MAX_QUERY_STRING_BYTES,
    PARAMETERS,
    ConnectionRequest,
    HandshakeError,
    parse_connection_request,
)

VALID = b"tenant=acme&deployment_id=prod-1&connection_type=browser"
ALLOWED_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
VALUE_RULE = re.compile(r"[A-Za-z0-9._-]{1,128}")
CODES = {
    "missing_parameter",
    "repeated_parameter",
    "invalid_parameter",
    "invalid_encoding",
    "query_too_long",
    "connection_type_not_allowed",
}


def query(**overrides: str | None) -> bytes:
    """The valid query with some values replaced (raw, not encoded) or left out (None)."""
    values = {"tenant": "acme", "deployment_id": "prod-1", "connection_type": "browser"}
    values.update(overrides)
    return "&".join(f"{k}={v}" for k, v in values.items() if v is not None).encode("latin-1")


def refusal(query_string: bytes, **kwargs) -> HandshakeError:
    with pytest.raises(HandshakeError) as caught:
        parse_connection_request(query_string, **kwargs)
    return caught.value


# -- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query_string",
    [
        VALID,
        b"connection_type=browser&tenant=acme&deployment_id=prod-1",
        b"deployment_id=prod-1&connection_type=browser&tenant=acme",
        b"token=xyz&tenant=acme&v=2&deployment_id=prod-1&connection_type=browser&flag",
        b"tenant=acme&deployment_id=prod-1&connection_type=browser&other=%20/#%C3%A9&x=a+b",
        b"&&tenant=acme&&deployment_id=prod-1&connection_type=browser&",
        b"%74enant=acme&deployment%5Fid=prod-1&connection_type=%62rowser",
        b"tenant=%61%63%6D%65&deployment_id=prod%2D1&connection_type=browser",
    ],
    ids=[
        "canonical",
        "other-order",
        "another-order",
        "extra-parameters",
        "extra-parameter-with-invalid-characters",
        "empty-segments",
        "percent-encoded-names",
        "percent-encoded-values",
    ],
)
def test_valid_query_is_accepted(query_string):
    assert parse_connection_request(query_string) == ConnectionRequest(
        tenant="acme", deployment_id="prod-1", connection_type="browser"
    )


@pytest.mark.parametrize("name", PARAMETERS)
@pytest.mark.parametrize(
    "value", ["a", "Z", "0", ".", "_", "-", "x" * 128, ALLOWED_CHARACTERS, "a.b_c-D9"]
)
def test_each_parameter_accepts_every_allowed_value_shape(name, value):
    request = parse_connection_request(query(**{name: value}))
    assert getattr(request, name) == value


def test_all_allowed_characters_are_accepted_in_all_parameters_at_once():
    q = query(tenant=ALLOWED_CHARACTERS, deployment_id="." * 128, connection_type="-_.")
    assert parse_connection_request(q) == ConnectionRequest(ALLOWED_CHARACTERS, "." * 128, "-_.")


def test_query_of_exactly_the_byte_limit_is_accepted():
    base = VALID + b"&pad="
    q = base + b"p" * (MAX_QUERY_STRING_BYTES - len(base))
    assert len(q) == MAX_QUERY_STRING_BYTES
    assert parse_connection_request(q).tenant == "acme"


# -- refused: 4400 -------------------------------------------------------------------------


@pytest.mark.parametrize("name", PARAMETERS)
def test_missing_parameter_is_refused(name):
    error = refusal(query(**{name: None}))
    assert (error.code, error.close_code) == ("missing_parameter", close_codes.INVALID_QUERY)
    assert f"'{name}'" in error.detail


@pytest.mark.parametrize(
    "query_string, first_missing",
    [
        (b"", "tenant"),
        (b"&", "tenant"),
        (b"=", "tenant"),
        (b"tenant=acme", "deployment_id"),
        (b"Tenant=acme&deployment_id=d&connection_type=c", "tenant"),
        (b"tenant =acme&deployment_id=d&connection_type=c", "tenant"),
        (b"tenant+=acme&deployment_id=d&connection_type=c", "tenant"),
    ],
    ids=[
        "empty",
        "ampersand",
        "equals",
        "only-tenant",
        "wrong-case",
        "space-in-name",
        "plus-in-name",
    ],
)
def test_query_without_a_parameter_names_the_first_missing_one(query_string, first_missing):
    error = refusal(query_string)
    assert (error.code, error.close_code) == ("missing_parameter", close_codes.INVALID_QUERY)
    assert error.detail == f"query parameter '{first_missing}' is required"


@pytest.mark.parametrize("name", PARAMETERS)
@pytest.mark.parametrize(
    "repeat",
    [b"{name}=a&{name}=b", b"{name}=a&{name}=a", b"{name}=a&{name}=", b"{name}=a&{name}"],
    ids=["different", "identical", "second-empty", "second-bare"],
)
def test_repeated_parameter_is_refused(name, repeat):
    others = b"&".join(f"{n}=ok".encode() for n in PARAMETERS if n != name)
    error = refusal(repeat.replace(b"{name}", name.encode()) + b"&" + others)
    assert (error.code, error.close_code) == ("repeated_parameter", close_codes.INVALID_QUERY)
    assert error.detail == f"query parameter '{name}' must be given once, got 2"


def test_repetition_through_percent_encoding_is_refused():
    error = refusal(VALID + b"&%74enant=acme")
    assert (error.code, error.detail) == (
        "repeated_parameter",
        "query parameter 'tenant' must be given once, got 2",
    )


INVALID_VALUES = {
    "empty": "",
    "129-characters": "x" * 129,
    "space-encoded": "a%20b",
    "plus-is-space": "a+b",
    "encoded-plus": "a%2Bb",
    "encoded-hash": "a%23b",
    "slash": "a/b",
    "encoded-slash": "a%2Fb",
    "colon": "a:b",
    "equals-in-value": "a=b",
    "star": "a*",
    "tilde": "a~b",
    "encoded-e-acute": "caf%C3%A9",
    "encoded-fullwidth-a": "%EF%BC%A1",
    "encoded-arabic-digit": "%D9%A1",
    "encoded-nul": "a%00",
    "encoded-newline-suffix": "a%0A",
    "encoded-tab": "a%09b",
    "encoded-del": "a%7F",
    "raw-control-character": "a\x01b",
    "raw-tab": "a\tb",
    "malformed-percent": "a%zz",
    "lone-percent": "a%",
}


@pytest.mark.parametrize("name", PARAMETERS)
@pytest.mark.parametrize("value", INVALID_VALUES.values(), ids=INVALID_VALUES.keys())
def test_invalid_value_is_refused_not_cleaned(name, value):
    error = refusal(query(**{name: value}))
    assert (error.code, error.close_code) == ("invalid_parameter", close_codes.INVALID_QUERY)
    assert error.detail == (
        f"query parameter '{name}' must be 1..128 characters of A-Z a-z 0-9 . _ -"
    )


@pytest.mark.parametrize("name", PARAMETERS)
def test_bare_parameter_is_an_empty_value(name):
    q = b"&".join(n.encode() if n == name else f"{n}=ok".encode() for n in PARAMETERS)
    error = refusal(q)
    assert (error.code, error.close_code) == ("invalid_parameter", close_codes.INVALID_QUERY)
    assert f"'{name}'" in error.detail


def test_semicolon_is_not_a_separator_so_the_value_is_refused():
    error = refusal(b"tenant=acme;deployment_id=d;connection_type=c")
    assert (error.code, error.detail.split("'")[1]) == ("invalid_parameter", "tenant")


def test_raw_hash_is_part_of_the_value_and_refused():
    # A client that forgot to encode '#' sends it raw in the query (servers never see fragments).
    error = refusal(query(tenant="a#b"))
    assert (error.code, error.detail.split("'")[1]) == ("invalid_parameter", "tenant")


@pytest.mark.parametrize(
    "query_string",
    [
        query(tenant="%ff"),
        query(deployment_id="a%C3"),
        query(connection_type="%ED%A0%80"),  # a UTF-8-encoded surrogate
        query(tenant="%C0%AF"),  # overlong encoding of '/'
        VALID + b"&%ff=x",
        "tenant=café&deployment_id=d&connection_type=c".encode(),
        b"tenant=acme&deployment_id=\xff&connection_type=c",
        b"tenant=acme&deployment_id=d&connection_type=c&x=\x80",
    ],
    ids=[
        "ff",
        "truncated-sequence",
        "surrogate",
        "overlong",
        "in-unknown-name",
        "raw-utf8",
        "raw-ff",
        "raw-byte-in-unknown-parameter",
    ],
)
def test_undecodable_query_is_refused(query_string):
    error = refusal(query_string)
    assert (error.code, error.close_code) == ("invalid_encoding", close_codes.INVALID_QUERY)
    assert error.detail == "query string must be ASCII with UTF-8 percent-encoding"


def test_query_one_byte_over_the_limit_is_refused():
    base = VALID + b"&pad="
    q = base + b"p" * (MAX_QUERY_STRING_BYTES + 1 - len(base))
    error = refusal(q)
    assert (error.code, error.close_code) == ("query_too_long", close_codes.INVALID_QUERY)
    assert error.detail == f"query string is longer than {MAX_QUERY_STRING_BYTES} bytes"


def test_long_query_is_refused_before_it_is_decoded():
    error = refusal(b"\xff" * (MAX_QUERY_STRING_BYTES + 1))
    assert error.code == "query_too_long"


def test_error_is_an_exception_whose_message_is_the_detail():
    error = refusal(b"")
    assert str(error) == error.detail


# -- WS_CONNECTION_TYPES -------------------------------------------------------------------


@pytest.mark.parametrize(
    "allowed, connection_type",
    [
        (frozenset(), "anything.valid"),
        (frozenset({"browser"}), "browser"),
        (frozenset({"browser", "device", "service"}), "device"),
    ],
)
def test_allowed_connection_type_passes(allowed, connection_type):
    request = parse_connection_request(
        query(connection_type=connection_type), allowed_connection_types=allowed
    )
    assert request.connection_type == connection_type


@pytest.mark.parametrize("connection_type", ["device", "Browser", "browser2", "browse"])
def test_disallowed_connection_type_is_forbidden(connection_type):
    error = refusal(
        query(connection_type=connection_type),
        allowed_connection_types=frozenset({"browser", "service"}),
    )
    assert (error.code, error.close_code) == ("connection_type_not_allowed", 4403)
    assert error.close_code == close_codes.FORBIDDEN
    assert error.detail == (f"connection_type '{connection_type}' is not accepted by this server")


def test_invalid_connection_type_is_a_malformed_query_even_when_restricted():
    error = refusal(
        query(connection_type="no way"), allowed_connection_types=frozenset({"browser"})
    )
    assert (error.code, error.close_code) == ("invalid_parameter", 4400)


def test_close_codes_are_the_documented_numbers():
    assert (close_codes.INVALID_QUERY, close_codes.FORBIDDEN) == (4400, 4403)


# -- properties ----------------------------------------------------------------------------


def assert_request_or_documented_refusal(query_string: bytes) -> None:
    try:
        request = parse_connection_request(query_string)
    except HandshakeError as error:
        assert error.code in CODES - {"connection_type_not_allowed"}
        assert error.close_code == close_codes.INVALID_QUERY
        assert error.detail
    else:
        assert isinstance(request, ConnectionRequest)
        for name in PARAMETERS:
            assert VALUE_RULE.fullmatch(getattr(request, name))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=MAX_QUERY_STRING_BYTES + 64))
def test_any_bytes_give_a_request_or_a_documented_refusal(query_string):
    assert_request_or_documented_refusal(query_string)


_valid_pieces = ["a", "Z", "9", ".", "_", "-", "%41", "%2D", "x" * 64]
_invalid_pieces = [
    "%",
    "%2",
    "%ff",
    "%C3%A9",
    "%00",
    "%20",
    "+",
    "#",
    ";",
    " ",
    "é",
    "\x00",
    "\n",
    "=",
    "/",
]
_names = st.sampled_from([*PARAMETERS, *PARAMETERS, "other", "%74enant", "tenant ", ""])
_value = st.lists(st.sampled_from(_valid_pieces * 5 + _invalid_pieces), max_size=4).map("".join)
_pair = st.builds(
    lambda name, value, bare: name if bare else f"{name}={value}",
    _names,
    _value,
    st.integers(0, 5).map(lambda n: n == 0),
)
_query_text = st.lists(_pair, max_size=7).map("&".join)
_all_three = st.builds(
    lambda order, values, extra: "&".join(
        [*map("=".join, zip(order, values, strict=True)), *extra]
    ),
    st.permutations(PARAMETERS),
    st.lists(
        st.lists(st.sampled_from(_valid_pieces * 20 + _invalid_pieces), min_size=1, max_size=3).map(
            "".join
        ),
        min_size=3,
        max_size=3,
    ),
    st.lists(st.sampled_from(["other=%ff", "flag", "x=%20", "%74enant=a", "tenant"]), max_size=2),
)
_free_text = st.lists(
    st.sampled_from([*PARAMETERS, "other", "&", *_valid_pieces, *_invalid_pieces]), max_size=40
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_all_three | _query_text | _free_text)
def test_query_like_text_gives_a_request_or_a_documented_refusal(text):
    assert_request_or_documented_refusal(text.encode("utf-8"))


_values = st.text(alphabet=ALLOWED_CHARACTERS, min_size=1, max_size=128)


@settings(max_examples=300, deadline=None)
@given(st.permutations(PARAMETERS), _values, _values, _values)
def test_any_valid_values_in_any_order_are_returned_exactly(order, tenant, deployment, kind):
    values = {"tenant": tenant, "deployment_id": deployment, "connection_type": kind}
    q = "&".join(f"{name}={values[name]}" for name in order).encode()
    assert parse_connection_request(q) == ConnectionRequest(tenant, deployment, kind)
