"""handshake: the query-string rules of DESIGN.md section 2 (parse_connection_request,
token_from_query) and the Origin check (check_origin, WS_ALLOWED_ORIGINS)."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.core import close_codes
from realtime.core.handshake import (
    MAX_QUERY_STRING_BYTES,
    PARAMETERS,
    ConnectionRequest,
    HandshakeError,
    check_origin,
    origin_pattern_errors,
    parse_connection_request,
    token_from_query,
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


# -- token_from_query ----------------------------------------------------------------------

TOKEN_QUERY_CODES = {"query_too_long", "invalid_encoding", "repeated_parameter"}


@pytest.mark.parametrize(
    ("query_string", "token"),
    [
        (VALID, None),
        (b"", None),
        (b"tokens=x&Token=y&token_=z", None),
        (VALID + b"&token=aa.bb.cc", "aa.bb.cc"),
        (b"token=aa.bb.cc&" + VALID, "aa.bb.cc"),
        (VALID + b"&%74oken=aa.bb.cc", "aa.bb.cc"),
        (VALID + b"&token=aa%2Ebb.cc", "aa.bb.cc"),
        (VALID + b"&token=", ""),
        (VALID + b"&token", ""),
        (VALID + b"&token=a+b", "a b"),
        (VALID + b"&token=a=b", "a=b"),
    ],
    ids=[
        "absent",
        "empty-query",
        "similar-names",
        "last",
        "first",
        "percent-encoded-name",
        "percent-encoded-value",
        "empty",
        "bare",
        "plus-is-space",
        "equals-in-value",
    ],
)
def test_token_is_taken_from_the_query_as_sent(query_string, token):
    assert token_from_query(query_string) == token


@pytest.mark.parametrize(
    ("query_string", "count"),
    [
        (VALID + b"&token=a.b.c&token=a.b.c", 2),
        (VALID + b"&token=a.b.c&token=", 2),
        (b"token&" + VALID + b"&token=a.b.c", 2),
        (VALID + b"&token=x&%74oken=y&token=z", 3),
    ],
    ids=["identical", "second-empty", "first-bare", "three-through-encoding"],
)
def test_repeated_token_is_refused(query_string, count):
    with pytest.raises(HandshakeError) as caught:
        token_from_query(query_string)
    error = caught.value
    assert (error.code, error.close_code, error.detail) == (
        "repeated_parameter",
        close_codes.INVALID_QUERY,
        f"query parameter 'token' must be given once, got {count}",
    )


def test_repeated_token_does_not_change_parse_connection_request():
    # The existing parser ignores `token`, as every parameter it does not know.
    q = VALID + b"&token=a&token=b"
    assert parse_connection_request(q) == ConnectionRequest("acme", "prod-1", "browser")


@pytest.mark.parametrize(
    ("query_string", "code"),
    [
        (VALID + b"&token=" + b"t" * MAX_QUERY_STRING_BYTES, "query_too_long"),
        (VALID + b"&token=%ff", "invalid_encoding"),
        (VALID + b"&token=\xc3\xa9", "invalid_encoding"),
        (VALID + b"&x=%ff", "invalid_encoding"),
    ],
    ids=["too-long", "bad-percent-encoding", "raw-utf8", "elsewhere-in-the-query"],
)
def test_token_query_is_decoded_as_strictly_as_the_handshake(query_string, code):
    with pytest.raises(HandshakeError) as caught:
        token_from_query(query_string)
    assert (caught.value.code, caught.value.close_code) == (code, close_codes.INVALID_QUERY)
    assert caught.value.detail == refusal(query_string).detail


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=MAX_QUERY_STRING_BYTES + 64)
    | st.lists(
        st.sampled_from(["token=a.b.c", "token", "%74oken=x", "token=%ff", "x=1", "&", "é"]),
        max_size=5,
    ).map(lambda parts: "&".join(parts).encode())
)
def test_token_from_query_fails_only_as_the_handshake_does(query_string):
    """Any bytes: a string, None, or one of three refusals; the query's own refusals
    (length, encoding) are the handshake's, byte for byte."""
    try:
        token = token_from_query(query_string)
    except HandshakeError as error:
        assert error.code in TOKEN_QUERY_CODES
        assert error.close_code == close_codes.INVALID_QUERY
        if error.code != "repeated_parameter":
            assert refusal(query_string).code == error.code
    else:
        assert token is None or isinstance(token, str)


# -- check_origin (WS_ALLOWED_ORIGINS) -----------------------------------------------------


def origin_headers(*origins: bytes, name: bytes = b"origin") -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"ws.example.com"), (b"user-agent", b"test")]
    return headers + [(name, origin) for origin in origins]


def origin_refusal(headers, allowed) -> HandshakeError:
    with pytest.raises(HandshakeError) as caught:
        check_origin(headers, allowed)
    return caught.value


def origin_allowed(origin: bytes, allowed: list[str]) -> bool:
    try:
        check_origin(origin_headers(origin), allowed)
    except HandshakeError as error:
        assert (error.code, error.close_code) == ("origin_not_allowed", close_codes.FORBIDDEN)
        assert error.detail == "this origin may not connect to this server"
        return False
    return True


ORIGIN_CASES = {
    # pattern: (allowed origins, refused origins)
    "https://app.example.com": (
        [
            b"https://app.example.com",
            b"https://app.example.com:443",
            b"HTTPS://APP.Example.COM",
            b"https://app.example.com/",
        ],
        [
            b"http://app.example.com",  # scheme
            b"wss://app.example.com",  # same default port, other scheme
            b"https://app.example.com:8443",  # port
            b"https://example.com",
            b"https://www.app.example.com",
            b"https://evil-app.example.com",
            b"https://app.example.com.evil.org",
            b"https://app.example.co",
        ],
    ),
    "https://.example.com": (  # Channels' wildcard: the domain and every subdomain
        [
            b"https://example.com",
            b"https://app.example.com",
            b"https://a.b.example.com",
            b"https://app.example.com:443",
        ],
        [
            b"http://app.example.com",
            b"https://app.example.com:8443",
            b"https://badexample.com",
            b"https://example.com.evil.org",
            b"https://example.org",
        ],
    ),
    "http://localhost:8000": (
        [b"http://localhost:8000", b"http://LOCALHOST:8000"],
        [
            b"http://localhost",
            b"http://localhost:80",
            b"http://localhost:8001",
            b"https://localhost:8000",
        ],
    ),
    "http://[::1]:8000": (
        [b"http://[::1]:8000"],
        [b"http://[::1]:8001", b"http://127.0.0.1:8000"],
    ),
    "example.com": (  # no scheme: any scheme, any port, that host only
        [b"https://example.com", b"http://example.com:1234", b"ws://example.com"],
        [b"https://app.example.com", b"https://example.org"],
    ),
}


@pytest.mark.parametrize(
    ("pattern", "origin", "allowed"),
    [
        (pattern, origin, allowed)
        for pattern, (good, bad) in ORIGIN_CASES.items()
        for allowed, origins in ((True, good), (False, bad))
        for origin in origins
    ],
)
def test_origin_patterns_follow_channels(pattern, origin, allowed):
    assert origin_allowed(origin, [pattern]) is allowed


def test_origin_matching_is_channels_own():
    """The same answer as channels.security.websocket.OriginValidator for every case above."""
    from urllib.parse import urlparse

    from channels.security.websocket import OriginValidator

    for pattern, (good, bad) in ORIGIN_CASES.items():
        validator = OriginValidator(None, [pattern])
        for origin in good + bad:
            expected = validator.valid_origin(urlparse(origin.decode("latin-1")))
            assert origin_allowed(origin, [pattern]) is expected, (pattern, origin)


def test_any_of_several_patterns_allows():
    allowed = ["https://app.example.com", "http://localhost:8000"]
    assert origin_allowed(b"http://localhost:8000", allowed)
    assert origin_allowed(b"https://app.example.com", allowed)
    assert not origin_allowed(b"https://other.example.com", allowed)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        origin_headers(),
        origin_headers(b"https://evil.example.org"),
        origin_headers(b"a", b"b"),
        origin_headers(b"\xff\x00garbage"),
    ],
    ids=["no-headers", "no-origin", "any-origin", "several-origins", "garbage"],
)
@pytest.mark.parametrize("allowed", [[], ["*"], ["https://app.example.com", "*"]])
def test_empty_list_or_star_checks_nothing(headers, allowed):
    assert check_origin(headers, allowed) is None


@pytest.mark.parametrize("headers", [[], origin_headers()], ids=["no-headers", "no-origin"])
def test_missing_origin_is_refused_when_a_list_is_set(headers):
    error = origin_refusal(headers, ["https://app.example.com"])
    assert (error.code, error.close_code, error.detail) == (
        "origin_not_allowed",
        4403,
        "this server requires an Origin header",
    )


@pytest.mark.parametrize(
    "origins",
    [
        (b"https://app.example.com", b"https://app.example.com"),
        (b"https://evil.example.org", b"https://app.example.com"),
        (b"https://app.example.com", b"https://evil.example.org"),
        (b"https://app.example.com", b""),
    ],
    ids=["identical", "allowed-last", "allowed-first", "second-empty"],
)
def test_several_origin_headers_are_refused(origins):
    error = origin_refusal(origin_headers(*origins), ["https://app.example.com"])
    assert (error.code, error.close_code, error.detail) == (
        "origin_not_allowed",
        close_codes.FORBIDDEN,
        "the handshake has several Origin headers",
    )


def test_origin_header_name_is_matched_in_any_case():
    # ASGI servers lower-case header names; a hand-built scope might not.
    assert (
        check_origin(
            origin_headers(b"https://app.example.com", name=b"Origin"), ["https://app.example.com"]
        )
        is None
    )
    error = origin_refusal(
        origin_headers(b"https://x.org", name=b"ORIGIN"), ["https://app.example.com"]
    )
    assert error.detail == "this origin may not connect to this server"


@pytest.mark.parametrize(
    "origin",
    [
        b"null",  # sandboxed iframes, file:// pages
        b"",
        b"app.example.com",
        b"https://",
        b"https:app.example.com",
        b"//app.example.com",
        b"http://[::1",
        b"https://app.example.com:99999",
        b"https://app.example.com:port",
        b"https://app.example.com:-1",
        b"https://app.example.com\x00",
        b"https://app.example.com\r\nx: y",
        b"\xff\xfe\xfd",
        b"https://app.example.com@evil.org",
        b"https://evil.org#@app.example.com",
    ],
)
def test_garbage_origins_are_refused_never_raised(origin):
    assert not origin_allowed(origin, ["https://app.example.com"])


def test_broken_patterns_match_nothing_and_do_not_block_good_ones():
    # Channels would raise at every match on the first pattern, good origins included.
    allowed = ["https://a.example.com:99999", "https://*.example.com", "localhost:8000", ""]
    assert not origin_allowed(b"https://a.example.com", allowed)
    assert not origin_allowed(b"http://localhost:8000", allowed)
    assert origin_allowed(b"https://b.example.com", [*allowed, "https://b.example.com"])


def test_a_list_of_only_broken_patterns_refuses_everything():
    # Never fail open: leaving the broken patterns out must not turn the check off.
    assert not origin_allowed(b"https://a.example.com", ["https://a.example.com:99999"])


GLOB = (
    "uses '*' inside a host, which Channels does not support: write 'https://.example.com' "
    "for example.com and all its subdomains"
)
NO_HOST = "has no host: write it as 'scheme://host[:port]', for example 'http://localhost:8000'"


@pytest.mark.parametrize(
    ("patterns", "errors"),
    [
        (["*", "https://app.example.com", "https://.example.com", "example.com"], []),
        (["http://localhost:8000", "http://[::1]:8000", "HTTPS://APP.EXAMPLE.COM"], []),
        (["https://*.example.com"], [f"'https://*.example.com' {GLOB}"]),
        (["*.example.com", "https://.example.com"], [f"'*.example.com' {GLOB}"]),
        ([""], ["'' is empty"]),
        (["localhost:8000"], [f"'localhost:8000' {NO_HOST}"]),
        (
            ["https://", "example.com:443"],
            [f"'https://' {NO_HOST}", f"'example.com:443' {NO_HOST}"],
        ),
        (
            ["https://app.example.com:99999"],
            ["'https://app.example.com:99999' cannot be parsed (Port out of range 0-65535)"],
        ),
        (
            ["https://app.example.com", "http://[::1"],
            ["'http://[::1' cannot be parsed (Invalid IPv6 URL)"],
        ),
    ],
)
def test_origin_pattern_errors(patterns, errors):
    assert origin_pattern_errors(patterns) == errors


_origin_piece = st.sampled_from(
    [
        "https://",
        "http://",
        "ws://",
        "app",
        ".",
        "example",
        "com",
        ":",
        "443",
        "8000",
        "[",
        "]",
        "::1",
        "@",
        "#",
        "/",
        "null",
        "*",
        "%",
        "é",
        "\x00",
        " ",
    ]
)
_origin_text = st.lists(_origin_piece, max_size=8).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_origin_text.map(str.encode) | st.binary(max_size=40), max_size=3),
    st.lists(_origin_text, min_size=1, max_size=3),
)
def test_any_origin_headers_give_none_or_a_documented_refusal(origins, allowed):
    try:
        check_origin(origin_headers(*origins), allowed)
    except HandshakeError as error:
        assert (error.code, error.close_code) == ("origin_not_allowed", close_codes.FORBIDDEN)
