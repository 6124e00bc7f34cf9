"""Who may use the management API: a bearer token from API_TOKENS, or a staff session.

- `Authorization: Bearer <token>` is compared with every configured token in constant time
  (hmac.compare_digest, no early exit), so neither timing nor the number of tokens tells an
  attacker how close a guess was. An empty API_TOKENS accepts no token.
- Without a bearer token, a logged-in, active staff user's session is accepted (the operator
  pages call the API from the browser). Session requests with unsafe methods must pass
  Django's CSRF check; token requests carry no ambient credentials and are exempt.
- An Authorization header with another scheme (say, Basic from a proxy in front of the admin)
  is not ours and is ignored: the session decides.

Tokens are never logged, not even in part.
"""

import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from realtime.core.logs import event
from realtime.operate.api.parse import ApiError

__all__ = ["Principal", "authenticate", "match_token"]

logger = logging.getLogger(__name__)

_REALM = 'Bearer realm="realtime-api"'
# RFC 7235/6750: the scheme, one or more spaces, one token of visible ASCII characters.
_BEARER = re.compile(r"bearer +([\x21-\x7e]+)", re.IGNORECASE)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request, for logs: "token:2" (its position in API_TOKENS) or "user:alice"."""

    label: str


def match_token(given: str, tokens: Sequence[str]) -> int | None:
    """The 1-based position of `given` in `tokens`, or None; compares with every token."""
    given_bytes = given.encode("utf-8", "surrogatepass")
    # A list, not any(): every comparison runs whatever the earlier ones found.
    matches = [hmac.compare_digest(given_bytes, token.encode("utf-8")) for token in tokens]
    return matches.index(True) + 1 if True in matches else None


async def authenticate(request: HttpRequest) -> Principal:
    """The request's principal.

    Raises:
        ApiError: 401 `not_authenticated` (no credentials), 401 `invalid_token` (a bearer
            token that is malformed or not configured), 403 `forbidden` (a session user who
            is not active staff), 403 `csrf_failed` (a session request with an unsafe method
            that fails Django's CSRF check).
    """
    header = request.headers.get("Authorization", "").strip()
    scheme = header.split(None, 1)[0] if header else ""
    if scheme.lower() != "bearer":
        return await _session_principal(request)
    match = _BEARER.fullmatch(header)
    return _token_principal(request, match.group(1) if match else None)


def _token_principal(request: HttpRequest, token: str | None) -> Principal:
    if token is None:
        _log_failure(request, "malformed_authorization")
        raise ApiError(
            401,
            "invalid_token",
            "malformed Authorization header: expected 'Bearer <token>'",
            headers={"WWW-Authenticate": f'{_REALM}, error="invalid_request"'},
        )
    position = match_token(token, settings.API_TOKENS)
    if position is None:
        _log_failure(request, "invalid_token")
        raise ApiError(
            401,
            "invalid_token",
            "the bearer token is not valid",
            headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
        )
    return Principal(f"token:{position}")


async def _session_principal(request: HttpRequest) -> Principal:
    user = await request.auser()
    if not user.is_authenticated:
        raise ApiError(
            401,
            "not_authenticated",
            "send 'Authorization: Bearer <token>' or log in as staff",
            headers={"WWW-Authenticate": _REALM},
        )
    if not (user.is_active and user.is_staff):
        _log_failure(request, "not_staff")
        raise ApiError(403, "forbidden", "the management API is for staff users only")
    if request.method not in _SAFE_METHODS:
        reason = _CsrfCheck(_unused_get_response).process_view(request, None, (), {})
        if reason is not None:
            raise ApiError(403, "csrf_failed", f"CSRF check failed: {reason}")
    return Principal(f"user:{user.get_username()}")


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, run on demand: `process_view` returns the reason or None."""

    def _reject(self, request, reason):
        return reason


def _unused_get_response(request) -> None:
    """The middleware needs one; process_view never calls it."""


def _log_failure(request: HttpRequest, reason: str) -> None:
    logger.warning(
        event("api.auth_failed", reason=reason, path=request.path, client=_client(request))
    )


def _client(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "-"
