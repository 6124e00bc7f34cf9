"""Client tokens (WS_AUTH=signed): issue and verify, as pure functions of their inputs.

A token is a JWT (RFC 7519) signed with HS256 and WS_TOKEN_SECRET. It binds one tenant,
deployment_id and connection_type and expires:

    {"tenant": "acme", "deployment_id": "prod-1", "connection_type": "client",
     "iat": 1767225600, "exp": 1767229200}

JWT rather than Django's signing: a customer's backend, in any language, can mint tokens with
the shared secret and an off-the-shelf library, without calling this server (`issue_token`,
the `issue_token` command and `POST /api/tokens` are conveniences); it is also the format
Centrifugo-style servers use, so clients and backends already know it.

Rules of `verify_token`, in order (each failure is a HandshakeError with a stable code, and
the token itself is never echoed, in details or anywhere else):

1. No token, or an empty one: `token_missing` (4401).
2. Longer than MAX_TOKEN_LENGTH, not three base64url segments, undecodable, signed with
   anything but HS256 (the header's `alg` is never trusted: only HS256 is accepted, so `none`
   and RS/ES/HS512 tokens are refused), a bad signature, an `aud` claim (the token is meant
   for someone else: we neither issue nor expect one), a missing or non-string
   tenant / deployment_id / connection_type, or a missing or non-numeric `exp`:
   `token_invalid` (4401).
3. `exp` at or before `now - leeway`: `token_expired` (4401); `exp` later than
   `now + max_ttl_seconds + leeway` (WS_TOKEN_MAX_TTL_SECONDS: no token this server's rules
   issue lives that long, so one that does would work forever once leaked): `token_invalid`.
4. `nbf` or `iat` after `now + leeway` (a token from the future: the issuer's clock is
   wrong): `token_invalid` (4401). Both are optional.
5. A tenant, deployment_id or connection_type claim other than the query's:
   `token_mismatch` (4403): the client is authenticated, but not for what it asks.

No `iss` or `aud` is issued or required: one secret belongs to one deployment of this
server, and the claims already say exactly which connections the token admits. A shared
issuer name would be one more setting for every minting backend to get right, and buys
nothing that the secret does not already. `iss`, `sub`, `jti` and other claims a backend
adds are ignored (PyJWT checks that `sub` and `jti`, when present, are strings).

A token is checked once, at the handshake: a connection outlives its token (close it with
WS_MAX_LIFETIME_SECONDS or the disconnect API). Its lifetime only bounds how long it can be
used to connect, and reconnect.
"""

import math
import re
from typing import Any, Protocol

import jwt

from realtime.core.handshake import (
    PARAMETERS,
    ConnectionRequest,
    HandshakeError,
    is_valid_value,
    origin_pattern_errors,
)

__all__ = [
    "ALGORITHM",
    "DEFAULT_LEEWAY_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "MAX_TOKEN_LENGTH",
    "MIN_SECRET_LENGTH",
    "TOKEN_ERROR_CODES",
    "auth_warnings",
    "default_ttl_seconds",
    "is_usable_secret",
    "issue_token",
    "token_expiry",
    "verify_token",
]

ALGORITHM = "HS256"
# HS256's key should be at least as long as its output (RFC 7518 3.2; PyJWT warns below it).
MIN_SECRET_LENGTH = 32
# The token issued for the longest values (3 x 128 characters) is about 700 characters; 2048
# leaves room for claims other issuers add, and keeps a query with the three parameters and
# a token of this length under handshake.MAX_QUERY_STRING_BYTES (4096).
MAX_TOKEN_LENGTH = 2048
DEFAULT_TTL_SECONDS = 3600
DEFAULT_LEEWAY_SECONDS = 5.0

TOKEN_ERROR_CODES = frozenset({"token_missing", "token_invalid", "token_expired", "token_mismatch"})

# RFC 7515 compact serialization: three base64url segments, no padding, non-empty signature.
# Checked before PyJWT sees the token, so that only ASCII of the right shape reaches it.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

# exp/nbf/iat are checked here against the caller's `now` (PyJWT would read the clock itself);
# `aud` stays on: with no audience given, PyJWT refuses a token that names one.
_DECODE_OPTIONS = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}


def is_usable_secret(secret: str) -> bool:
    """Whether `secret` may sign tokens: set and at least MIN_SECRET_LENGTH characters."""
    return len(secret) >= MIN_SECRET_LENGTH


def default_ttl_seconds(max_ttl_seconds: int) -> int:
    """The lifetime of a token issued without one: an hour, or less if the maximum is less."""
    return min(DEFAULT_TTL_SECONDS, max_ttl_seconds)


def token_expiry(*, ttl_seconds: int, now: float) -> int:
    """The `exp` (epoch seconds) of a token issued at `now` for `ttl_seconds`."""
    return int(now) + ttl_seconds


def issue_token(request: ConnectionRequest, *, secret: str, ttl_seconds: int, now: float) -> str:
    """A token that admits `request`'s tenant, deployment_id and connection_type until
    `token_expiry(ttl_seconds=ttl_seconds, now=now)`.

    Callers (the command, the API) check their input and WS_TOKEN_MAX_TTL_SECONDS first;
    the checks here only catch programming errors.

    Raises:
        ValueError: a secret that is not usable, a ttl below 1, or a value that breaks the
            handshake's rule (such a token could never be used).
    """
    _check_secret(secret)
    if type(ttl_seconds) is not int or ttl_seconds < 1:
        raise ValueError("ttl_seconds must be a positive integer")
    for name in PARAMETERS:
        if not is_valid_value(getattr(request, name)):
            raise ValueError(f"{name} breaks the handshake's value rule")
    claims = {name: getattr(request, name) for name in PARAMETERS}
    claims["iat"] = int(now)
    claims["exp"] = token_expiry(ttl_seconds=ttl_seconds, now=now)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(
    token: str | None,
    request: ConnectionRequest,
    *,
    secret: str,
    now: float,
    max_ttl_seconds: float | None = None,
    leeway: float = DEFAULT_LEEWAY_SECONDS,
) -> None:
    """Check that `token` admits `request` at `now` (rules in the module's docstring).

    Args:
        token: the `token` query parameter (handshake.token_from_query), None when absent.
        request: the handshake's validated parameters.
        secret: WS_TOKEN_SECRET.
        now: epoch seconds.
        max_ttl_seconds: the longest lifetime a token may have (WS_TOKEN_MAX_TTL_SECONDS): one
            that expires later than that from now was not issued by these rules (a leaked
            secret's forgery, or a backend's mistake) and is refused. None: no bound.
        leeway: seconds of clock difference tolerated between issuer and server, both ways.

    Raises:
        HandshakeError: `token_missing`, `token_invalid`, `token_expired` (4401) or
            `token_mismatch` (4403).
        ValueError: a secret that is not usable or a negative leeway (configuration, not
            the client's fault).
    """
    _check_secret(secret)
    if leeway < 0:
        raise ValueError("leeway must not be negative")
    if not token:
        raise HandshakeError(
            "token_missing",
            "this server requires a 'token' query parameter",
        )
    claims = _decode(token, secret)

    for name in PARAMETERS:
        if not isinstance(claims.get(name), str):
            raise _invalid(f"token has no '{name}' claim (a string)")
    for name in ("exp", "nbf", "iat"):
        if (name == "exp" or name in claims) and not _is_numeric_date(claims.get(name)):
            raise _invalid(f"token has no '{name}' claim (a number of seconds)")

    if claims["exp"] <= now - leeway:
        raise HandshakeError("token_expired", "token has expired")
    if max_ttl_seconds is not None and claims["exp"] > now + max_ttl_seconds + leeway:
        raise _invalid(f"token expires more than {max_ttl_seconds:g} seconds from now")
    for name in ("nbf", "iat"):
        if name in claims and claims[name] > now + leeway:
            raise _invalid(f"token is not valid yet ('{name}' is in the future)")

    mismatched = [name for name in PARAMETERS if claims[name] != getattr(request, name)]
    if mismatched:
        names = ", ".join(f"'{name}'" for name in mismatched)
        noun = "claim" if len(mismatched) == 1 else "claims"
        verb = "does" if len(mismatched) == 1 else "do"
        raise HandshakeError(
            "token_mismatch",
            f"token {noun} {names} {verb} not match the query",
        )


def _decode(token: str, secret: str) -> dict[str, Any]:
    """The token's verified claims; every way of failing is `token_invalid`."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise _invalid(f"token is longer than {MAX_TOKEN_LENGTH} characters")
    if not _COMPACT.fullmatch(token):
        raise _invalid("token is not a JWT (three base64url segments)")
    try:
        # algorithms is fixed here, never taken from the token's header (RFC 8725 2.1).
        return jwt.decode(token, secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.InvalidAlgorithmError:
        raise _invalid(f"token must be signed with {ALGORITHM}") from None
    except jwt.InvalidSignatureError:
        raise _invalid("token signature does not match") from None
    except jwt.InvalidAudienceError:
        raise _invalid("token is meant for another audience ('aud')") from None
    except jwt.InvalidTokenError:
        raise _invalid("token is malformed") from None


def _is_numeric_date(value: object) -> bool:
    # JSON numbers only: bool is an int in Python, not in JSON; NaN and Infinity never compare
    # sensibly. (Huge ints are fine: Python compares them with floats exactly.)
    if type(value) is int:
        return True
    return type(value) is float and math.isfinite(value)


def _invalid(detail: str) -> HandshakeError:
    return HandshakeError("token_invalid", detail)


def _check_secret(secret: str) -> None:
    if not is_usable_secret(secret):
        raise ValueError(f"the token secret must be at least {MIN_SECRET_LENGTH} characters")


class _Settings(Protocol):
    DEBUG: bool
    WS_AUTH: str
    WS_TOKEN_SECRET: str
    WS_TOKEN_MAX_TTL_SECONDS: int
    WS_ALLOWED_ORIGINS: list[str]


def auth_warnings(settings: _Settings) -> list[str]:
    """What to say loudly at start about who may connect; empty when all is well.

    Args:
        settings: django.conf.settings, or anything with the same attributes.
    """
    warnings = []
    if settings.WS_AUTH == "none" and not settings.DEBUG:
        warnings.append(
            "WS_AUTH=none: any client that reaches this server can connect as any tenant, "
            "deployment and connection type; set WS_AUTH=signed and WS_TOKEN_SECRET"
        )
    # In development the local settings file always brings a secret, for issuing tokens to try
    # WS_AUTH=signed with: nothing to warn about there.
    if settings.WS_AUTH == "none" and settings.WS_TOKEN_SECRET and not settings.DEBUG:
        warnings.append(
            "WS_TOKEN_SECRET is set but WS_AUTH=none: tokens can be issued, "
            "but connections are not asked for one"
        )
    if settings.WS_TOKEN_MAX_TTL_SECONDS < 1:
        warnings.append("WS_TOKEN_MAX_TTL_SECONDS is below 1: no token can be issued")
    warnings.extend(
        f"WS_ALLOWED_ORIGINS: {error}"
        for error in origin_pattern_errors(settings.WS_ALLOWED_ORIGINS)
    )
    return warnings
