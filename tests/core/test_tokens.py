"""tokens: issue_token, verify_token and auth_warnings (pure; no server, no clock)."""

import base64
import json
from types import SimpleNamespace

import django.conf
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.core import close_codes
from realtime.core.handshake import (
    MAX_QUERY_STRING_BYTES,
    ConnectionRequest,
    HandshakeError,
    parse_connection_request,
    token_from_query,
)
from realtime.core.tokens import (
    DEFAULT_TTL_SECONDS,
    MAX_TOKEN_LENGTH,
    TOKEN_ERROR_CODES,
    auth_warnings,
    default_ttl_seconds,
    is_usable_secret,
    issue_token,
    token_expiry,
    verify_token,
)

# 64 characters: HS512 tokens minted with it (to be refused) draw no key-length warning.
SECRET = "tests-token-secret-" + "0123456789abcdef" * 2 + "-" + "x" * 12
OTHER_SECRET = "another-token-secret-0123456789abcdef"
NOW = 1_800_000_000
REQUEST = ConnectionRequest("acme", "prod-1", "client")
CLAIMS = {"tenant": "acme", "deployment_id": "prod-1", "connection_type": "client"}
ALLOWED_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
CLOSE_CODES = {
    "token_missing": 4401,
    "token_invalid": 4401,
    "token_expired": 4401,
    "token_mismatch": 4403,
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def signed(claims: dict, *, secret: str = SECRET, algorithm: str = "HS256", headers=None) -> str:
    """A token minted as another backend would, with any claims."""
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


def hs256(header: str, payload: str) -> str:
    """Sign two segments as they are (for payloads jwt.encode would not produce)."""
    algorithm = jwt.get_algorithm_by_name("HS256")
    signature = algorithm.sign(f"{header}.{payload}".encode(), SECRET.encode())
    return f"{header}.{payload}.{b64(signature)}"


def valid_claims(**overrides) -> dict:
    claims = {**CLAIMS, "iat": NOW, "exp": NOW + 600}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not ...}


def refusal(token, request=REQUEST, **kwargs) -> HandshakeError:
    kwargs = {"secret": SECRET, "now": NOW, **kwargs}
    with pytest.raises(HandshakeError) as caught:
        verify_token(token, request, **kwargs)
    return caught.value


def triple(error: HandshakeError) -> tuple[str, int, str]:
    return error.code, error.close_code, error.detail


# --- issue and verify -------------------------------------------------------------------


def test_issued_token_is_an_hs256_jwt_with_exactly_the_documented_claims():
    token = issue_token(REQUEST, secret=SECRET, ttl_seconds=600, now=NOW + 0.75)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert jwt.decode(token, options={"verify_signature": False}) == {
        "tenant": "acme",
        "deployment_id": "prod-1",
        "connection_type": "client",
        "iat": NOW,
        "exp": NOW + 600,
    }
    assert token_expiry(ttl_seconds=600, now=NOW + 0.75) == NOW + 600


def test_issued_token_verifies_for_its_request():
    token = issue_token(REQUEST, secret=SECRET, ttl_seconds=600, now=NOW)
    assert verify_token(token, REQUEST, secret=SECRET, now=NOW) is None
    assert verify_token(token, REQUEST, secret=SECRET, now=NOW + 599) is None


def test_a_token_minted_elsewhere_with_the_secret_verifies():
    # What a backend in another language produces: no iat, a float exp, extra claims.
    token = signed({**CLAIMS, "exp": NOW + 60.5, "sub": "user-7", "iss": "billing", "x": [1]})
    assert verify_token(token, REQUEST, secret=SECRET, now=NOW) is None


@settings(max_examples=100, deadline=None)
@given(
    st.text(ALLOWED_CHARACTERS, min_size=1, max_size=128),
    st.text(ALLOWED_CHARACTERS, min_size=1, max_size=128),
    st.text(ALLOWED_CHARACTERS, min_size=1, max_size=128),
    st.integers(1, 10 * 365 * 86400),
    st.floats(0, 4_000_000_000),
)
def test_any_valid_request_round_trips(tenant, deployment, kind, ttl, now):
    request = ConnectionRequest(tenant, deployment, kind)
    token = issue_token(request, secret=SECRET, ttl_seconds=ttl, now=now)
    assert len(token) <= MAX_TOKEN_LENGTH
    verify_token(token, request, secret=SECRET, now=now, leeway=0)
    expired = refusal(token, request, now=token_expiry(ttl_seconds=ttl, now=now), leeway=0)
    assert expired.code == "token_expired"


def test_largest_issued_token_fits_the_query_string_bound():
    request = ConnectionRequest("t" * 128, "d" * 128, "c" * 128)
    token = issue_token(request, secret=SECRET, ttl_seconds=10 * 365 * 86400, now=9_999_999_999)
    query = (
        f"tenant={request.tenant}&deployment_id={request.deployment_id}"
        f"&connection_type={request.connection_type}&token={token}"
    ).encode()
    assert len(token) < 800
    assert len(query) + (MAX_TOKEN_LENGTH - len(token)) <= MAX_QUERY_STRING_BYTES
    assert parse_connection_request(query) == request
    verify_token(token_from_query(query), request, secret=SECRET, now=9_999_999_999)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret": "x" * 31}, "the token secret must be at least 32 characters"),
        ({"secret": ""}, "the token secret must be at least 32 characters"),
        ({"ttl_seconds": 0}, "ttl_seconds must be a positive integer"),
        ({"ttl_seconds": -5}, "ttl_seconds must be a positive integer"),
        ({"ttl_seconds": True}, "ttl_seconds must be a positive integer"),
        ({"ttl_seconds": 60.0}, "ttl_seconds must be a positive integer"),
        ({"request": ConnectionRequest("ac me", "d", "c")}, "tenant breaks the handshake's"),
        ({"request": ConnectionRequest("a", "", "c")}, "deployment_id breaks the handshake's"),
        ({"request": ConnectionRequest("a", "d", "c" * 129)}, "connection_type breaks the"),
    ],
)
def test_issue_refuses_programming_errors(kwargs, message):
    arguments = {"request": REQUEST, "secret": SECRET, "ttl_seconds": 60, "now": NOW, **kwargs}
    request = arguments.pop("request")
    with pytest.raises(ValueError, match=message):
        issue_token(request, **arguments)


def test_verify_refuses_an_unusable_secret_or_a_negative_leeway():
    token = issue_token(REQUEST, secret=SECRET, ttl_seconds=60, now=NOW)
    with pytest.raises(ValueError, match="at least 32 characters"):
        verify_token(token, REQUEST, secret="short", now=NOW)
    with pytest.raises(ValueError, match="leeway must not be negative"):
        verify_token(token, REQUEST, secret=SECRET, now=NOW, leeway=-1)


def test_secret_and_ttl_helpers():
    assert (is_usable_secret("x" * 31), is_usable_secret("x" * 32)) == (False, True)
    assert DEFAULT_TTL_SECONDS == 3600
    assert (default_ttl_seconds(86400), default_ttl_seconds(600)) == (3600, 600)


# --- token_missing ----------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, ""], ids=["absent", "empty"])
def test_missing_token_is_4401(token):
    assert triple(refusal(token)) == (
        "token_missing",
        close_codes.NOT_AUTHENTICATED,
        "this server requires a 'token' query parameter",
    )


# --- token_invalid: shape, signature, algorithm -----------------------------------------


def test_tampered_payload_is_invalid():
    header, _, signature = signed(valid_claims()).split(".")
    forged = f"{header}.{segment(valid_claims(tenant='other'))}.{signature}"
    assert triple(refusal(forged, ConnectionRequest("other", "prod-1", "client"))) == (
        "token_invalid",
        4401,
        "token signature does not match",
    )


def test_tampered_signature_is_invalid():
    header, payload, signature = signed(valid_claims()).split(".")
    # The first character: the last one carries padding bits, and changing those may not
    # change the decoded signature at all.
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert triple(refusal(f"{header}.{payload}.{flipped}")) == (
        "token_invalid",
        4401,
        "token signature does not match",
    )


def test_token_signed_with_another_secret_is_invalid():
    error = refusal(signed(valid_claims(), secret=OTHER_SECRET))
    assert triple(error) == ("token_invalid", 4401, "token signature does not match")


def test_alg_none_token_is_refused():
    # As PyJWT (and every library) makes it: an empty signature, which is not our shape.
    unsigned = jwt.encode(valid_claims(), None, algorithm="none")
    assert unsigned.endswith(".")
    assert triple(refusal(unsigned)) == (
        "token_invalid",
        4401,
        "token is not a JWT (three base64url segments)",
    )
    # With some signature attached, it reaches PyJWT, which refuses the algorithm.
    padded = unsigned + b64(b"anything")
    assert triple(refusal(padded)) == ("token_invalid", 4401, "token must be signed with HS256")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "hs256", "HS256 ", "", None])
def test_header_algorithms_other_than_hs256_are_refused_by_name(alg):
    header = {"typ": "JWT"} if alg is None else {"alg": alg, "typ": "JWT"}
    good = signed(valid_claims()).split(".")[2]  # a real HS256 signature of something else
    token = f"{segment(header)}.{segment(valid_claims())}.{good}"
    assert triple(refusal(token)) == ("token_invalid", 4401, "token must be signed with HS256")


def test_hs512_token_with_the_right_secret_is_refused():
    token = signed(valid_claims(), algorithm="HS512")
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    assert triple(refusal(token)) == ("token_invalid", 4401, "token must be signed with HS256")


def test_rs256_token_is_refused():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(valid_claims(), key, algorithm="RS256")
    assert triple(refusal(token)) == ("token_invalid", 4401, "token must be signed with HS256")


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "a..c",
        ".b.c",
        "a.b.c ",
        " a.b.c",
        "a.b.c\n",
        "a+b.c.d",
        "a/b.c.d",
        "a=.b.c",
        "é.b.c",
        "\ud800.b.c",
        "\x00.b.c",
    ],
)
def test_tokens_of_the_wrong_shape_are_invalid(token):
    assert triple(refusal(token)) == (
        "token_invalid",
        4401,
        "token is not a JWT (three base64url segments)",
    )


@pytest.mark.parametrize(
    "token",
    [
        "a.b.c",
        f"{segment([1, 2])}.{segment(valid_claims())}.c2ln",
        f"{b64(b'{')}.{segment(valid_claims())}.c2ln",
        f"{segment({'alg': 'HS256', 'b64': False, 'crit': ['b64']})}.{segment(CLAIMS)}.c2ln",
        f"{segment({'alg': 'HS256', 'crit': ['exp']})}.{segment(CLAIMS)}.c2ln",
        f"{segment({'alg': 'HS256', 'crit': 'b64'})}.{segment(CLAIMS)}.c2ln",
    ],
    ids=[
        "garbage",
        "header-array",
        "header-truncated",
        "detached-payload",
        "unknown-critical-extension",
        "crit-not-a-list",
    ],
)
def test_undecodable_headers_are_malformed(token):
    assert triple(refusal(token)) == ("token_invalid", 4401, "token is malformed")


@pytest.mark.parametrize(
    "payload",
    [
        b64(b"not json"),
        segment([CLAIMS]),
        segment("acme"),
        segment(None),
        b64(b"[" * 700 + b"]" * 700),
        b64(b"{" * 1000),
    ],
    ids=["not-json", "array", "string", "null", "deeply-nested", "unclosed"],
)
def test_signed_payload_that_is_not_a_json_object_is_malformed(payload):
    # PyJWT checks the signature before it parses the payload: these are correctly signed.
    token = hs256(segment({"alg": "HS256", "typ": "JWT"}), payload)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert triple(refusal(token)) == ("token_invalid", 4401, "token is malformed")


def token_of_length(length: int) -> str:
    """A correctly signed token for REQUEST of exactly `length` characters."""
    for pad in range(length):
        for kid in range(4):  # the header's length moves the total by other steps
            token = signed(valid_claims(pad="p" * pad), headers={"kid": "k" * kid})
            if len(token) == length:
                return token
        if len(token) > length:
            break
    raise AssertionError(f"no token of {length} characters")


def test_token_length_is_bounded():
    verify_token(token_of_length(MAX_TOKEN_LENGTH), REQUEST, secret=SECRET, now=NOW)
    over = "token is longer than 2048 characters"
    assert triple(refusal(token_of_length(MAX_TOKEN_LENGTH + 1))) == ("token_invalid", 4401, over)
    assert triple(refusal("a" * 1_000_000)) == ("token_invalid", 4401, over)


# --- token_invalid: claims --------------------------------------------------------------


@pytest.mark.parametrize("name", ["tenant", "deployment_id", "connection_type"])
@pytest.mark.parametrize("value", [..., None, 5, True, ["acme"], {"v": "acme"}])
def test_binding_claims_must_be_strings(name, value):
    error = refusal(signed(valid_claims(**{name: value})))
    assert triple(error) == ("token_invalid", 4401, f"token has no '{name}' claim (a string)")


@pytest.mark.parametrize("value", [..., None, "1900000000", True, [NOW + 60], float("nan")])
def test_exp_is_required_and_numeric(value):
    error = refusal(signed(valid_claims(exp=value)))
    assert triple(error) == (
        "token_invalid",
        4401,
        "token has no 'exp' claim (a number of seconds)",
    )


@pytest.mark.parametrize("name", ["iat", "nbf"])
@pytest.mark.parametrize("value", [None, "1800000000", False, float("inf"), {}])
def test_iat_and_nbf_when_present_are_numeric(name, value):
    error = refusal(signed(valid_claims(**{name: value})))
    assert triple(error) == (
        "token_invalid",
        4401,
        f"token has no '{name}' claim (a number of seconds)",
    )


def test_infinite_exp_is_refused():
    assert refusal(signed(valid_claims(exp=float("inf")))).code == "token_invalid"


def test_huge_integer_exp_is_compared_exactly():
    verify_token(signed(valid_claims(exp=10**400)), REQUEST, secret=SECRET, now=NOW)


@pytest.mark.parametrize("exp", [1e300, 10**400, NOW + 86_400 + 6])
def test_an_exp_beyond_the_longest_lifetime_is_refused(exp):
    with pytest.raises(HandshakeError) as refused:
        verify_token(
            signed(valid_claims(exp=exp)), REQUEST, secret=SECRET, now=NOW, max_ttl_seconds=86_400
        )
    assert triple(refused.value) == (
        "token_invalid",
        4401,
        "token expires more than 86400 seconds from now",
    )


def test_an_exp_at_the_longest_lifetime_with_leeway_is_accepted():
    claims = valid_claims(exp=NOW + 86_400 + 5)
    verify_token(signed(claims), REQUEST, secret=SECRET, now=NOW, max_ttl_seconds=86_400)


@pytest.mark.parametrize("aud", ["realtime", ["realtime"], "x"])
def test_token_with_an_audience_is_meant_for_someone_else(aud):
    assert triple(refusal(signed(valid_claims(aud=aud)))) == (
        "token_invalid",
        4401,
        "token is meant for another audience ('aud')",
    )


def test_empty_audience_is_no_audience():
    # PyJWT treats a falsy aud as absent; so do we.
    verify_token(signed(valid_claims(aud="")), REQUEST, secret=SECRET, now=NOW)


@pytest.mark.parametrize(("name", "value"), [("sub", 7), ("jti", ["x"])])
def test_registered_claims_of_the_wrong_type_are_malformed(name, value):
    assert triple(refusal(signed(valid_claims(**{name: value})))) == (
        "token_invalid",
        4401,
        "token is malformed",
    )


# --- token_expired, and time ------------------------------------------------------------


@pytest.mark.parametrize(
    ("exp", "leeway", "expired"),
    [
        (NOW + 1, 0, False),
        (NOW, 0, True),  # RFC 7519: now must be before exp
        (NOW - 1, 0, True),
        (NOW - 1, 5, False),
        (NOW - 4.5, 5, False),
        (NOW - 5, 5, True),
        (NOW - 6, 5, True),
        (NOW - 100, 101, False),
    ],
)
def test_expiry_with_and_without_leeway(exp, leeway, expired):
    token = signed(valid_claims(exp=exp))
    if expired:
        error = refusal(token, leeway=leeway)
        assert triple(error) == ("token_expired", 4401, "token has expired")
    else:
        verify_token(token, REQUEST, secret=SECRET, now=NOW, leeway=leeway)


def test_default_leeway_is_five_seconds():
    verify_token(signed(valid_claims(exp=NOW - 4)), REQUEST, secret=SECRET, now=NOW)
    assert refusal(signed(valid_claims(exp=NOW - 5))).code == "token_expired"


def test_issued_token_expires_after_its_ttl_plus_leeway():
    token = issue_token(REQUEST, secret=SECRET, ttl_seconds=60, now=NOW)
    verify_token(token, REQUEST, secret=SECRET, now=NOW + 64.9)
    assert refusal(token, now=NOW + 65).code == "token_expired"


@pytest.mark.parametrize("name", ["iat", "nbf"])
@pytest.mark.parametrize(
    ("offset", "allowed"), [(-3600, True), (0, True), (5, True), (5.5, False), (3600, False)]
)
def test_iat_and_nbf_in_the_future_beyond_the_leeway_are_refused(name, offset, allowed):
    token = signed(valid_claims(**{name: NOW + offset}))
    if allowed:
        verify_token(token, REQUEST, secret=SECRET, now=NOW)
    else:
        assert triple(refusal(token)) == (
            "token_invalid",
            4401,
            f"token is not valid yet ('{name}' is in the future)",
        )


def test_expiry_is_reported_before_a_future_iat():
    token = signed(valid_claims(iat=NOW + 3600, exp=NOW - 3600))
    assert refusal(token).code == "token_expired"


# --- token_mismatch ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tenant", "deployment_id", "connection_type"])
@pytest.mark.parametrize("other", ["other", "Acme", "acme ", "prod-1x", ""])
def test_each_claim_must_match_the_query(name, other):
    error = refusal(signed(valid_claims(**{name: other})))
    assert triple(error) == (
        "token_mismatch",
        close_codes.FORBIDDEN,
        f"token claim '{name}' does not match the query",
    )


def test_an_issued_token_admits_only_its_own_request():
    token = issue_token(REQUEST, secret=SECRET, ttl_seconds=60, now=NOW)
    for request in [
        ConnectionRequest("beta", "prod-1", "client"),
        ConnectionRequest("acme", "prod-2", "client"),
        ConnectionRequest("acme", "prod-1", "worker"),
    ]:
        assert refusal(token, request).code == "token_mismatch"


def test_several_mismatched_claims_are_all_named():
    error = refusal(signed(valid_claims(tenant="beta", connection_type="worker")))
    assert triple(error) == (
        "token_mismatch",
        4403,
        "token claims 'tenant', 'connection_type' do not match the query",
    )


def test_mismatch_is_reported_after_expiry():
    # Not authenticated (4401) comes before not allowed (4403).
    error = refusal(signed(valid_claims(tenant="beta", exp=NOW - 60)))
    assert error.code == "token_expired"


# --- never another exception, never the token --------------------------------------------


def assert_accepted_or_documented(token, request=REQUEST) -> bool:
    """Whether `token` was accepted; a refusal must be documented and not echo the token."""
    try:
        verify_token(token, request, secret=SECRET, now=NOW)
    except HandshakeError as error:
        assert error.code in TOKEN_ERROR_CODES
        assert error.close_code == CLOSE_CODES[error.code]
        assert error.detail and str(error) == error.detail
        if token and len(token) > 8:
            assert token not in error.detail
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=MAX_TOKEN_LENGTH + 10))
def test_any_text_is_a_documented_refusal(token):
    assert_accepted_or_documented(token)


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_segment_text = st.text(_B64URL + "=.", max_size=60)
_segment_bytes = st.binary(max_size=60).map(b64)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_segment_json = _json.map(segment)
_any_segment = _segment_text | _segment_bytes | _segment_json


@settings(max_examples=500, deadline=None)
@given(st.lists(_any_segment, min_size=1, max_size=4).map(".".join))
def test_token_shaped_text_is_a_documented_refusal(token):
    assert_accepted_or_documented(token)


def _mostly(good, *bad):
    """`good` three times in five, else one of `bad` or any JSON value."""
    return st.one_of(st.just(good), st.just(good), st.just(good), st.sampled_from(bad), _json)


# Claims near the valid ones, so that every outcome (accepted, each refusal) is reached.
_claims = st.fixed_dictionaries(
    {
        "tenant": _mostly("acme", "other", ""),
        "deployment_id": _mostly("prod-1", "prod-2"),
        "connection_type": _mostly("client", "worker"),
        "exp": _mostly(NOW + 60, NOW, NOW - 10, NOW + 0.5, 1e400, True, "x"),
    },
    optional={
        "iat": _mostly(NOW, NOW + 10, NOW - 10, 1e300),
        "nbf": _mostly(NOW, NOW + 10, NOW - 10),
        "aud": st.sampled_from(["", "realtime", ["a"]]) | _json,
        "sub": st.text(max_size=5) | _json,
        "jti": st.text(max_size=5) | _json,
    },
).map(lambda claims: {name: value for name, value in claims.items() if value != "x"})
_headers = st.fixed_dictionaries(
    {}, optional={"kid": st.text(max_size=5), "typ": st.text(max_size=5), "cty": _json}
)


@settings(max_examples=500, deadline=None)
@given(_claims, _headers, st.sampled_from(["HS256", "HS256", "HS256", "HS384", "HS512"]))
def test_signed_tokens_with_any_claims_give_success_or_a_documented_refusal(claims, headers, alg):
    try:
        token = signed(claims, algorithm=alg, headers=headers)
    except (TypeError, ValueError, jwt.InvalidTokenError):
        return  # PyJWT would not mint it (a claim of the wrong type for its encoder)
    if assert_accepted_or_documented(token):
        assert (alg, claims["exp"] > NOW - 5) == ("HS256", True)
        assert {name: claims[name] for name in CLAIMS} == CLAIMS
        assert not claims.get("aud")


# --- auth_warnings ----------------------------------------------------------------------


def config(**overrides) -> SimpleNamespace:
    values = {
        "DEBUG": False,
        "WS_AUTH": "signed",
        "WS_TOKEN_SECRET": SECRET,
        "WS_TOKEN_MAX_TTL_SECONDS": 86400,
        "WS_ALLOWED_ORIGINS": [],
    }
    values.update(overrides)
    return SimpleNamespace(**values)


NO_AUTH = (
    "WS_AUTH=none: any client that reaches this server can connect as any tenant, "
    "deployment and connection type; set WS_AUTH=signed and WS_TOKEN_SECRET"
)
UNCHECKED = (
    "WS_TOKEN_SECRET is set but WS_AUTH=none: tokens can be issued, "
    "but connections are not asked for one"
)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, []),
        ({"DEBUG": True}, []),
        ({"WS_AUTH": "none", "WS_TOKEN_SECRET": ""}, [NO_AUTH]),
        ({"WS_AUTH": "none", "WS_TOKEN_SECRET": "", "DEBUG": True}, []),
        ({"WS_AUTH": "none"}, [NO_AUTH, UNCHECKED]),
        # In development the local settings always bring a secret: nothing to warn about.
        ({"WS_AUTH": "none", "DEBUG": True}, []),
        (
            {"WS_TOKEN_MAX_TTL_SECONDS": 0},
            ["WS_TOKEN_MAX_TTL_SECONDS is below 1: no token can be issued"],
        ),
        ({"WS_ALLOWED_ORIGINS": ["https://app.example.com", "https://.example.com", "*"]}, []),
        (
            {"WS_ALLOWED_ORIGINS": ["https://*.example.com"]},
            [
                "WS_ALLOWED_ORIGINS: 'https://*.example.com' uses '*' inside a host, which "
                "Channels does not support: write 'https://.example.com' for example.com and "
                "all its subdomains"
            ],
        ),
    ],
    ids=[
        "signed",
        "signed-debug",
        "none",
        "none-debug",
        "none-with-secret",
        "none-with-secret-debug",
        "no-ttl",
        "good-origins",
        "glob-origin",
    ],
)
def test_auth_warnings(overrides, expected):
    assert auth_warnings(config(**overrides)) == expected


def test_auth_warnings_read_django_settings():
    # tests/settings.py: WS_AUTH=none, DEBUG off, no secret.
    assert auth_warnings(django.conf.settings) == [NO_AUTH]
