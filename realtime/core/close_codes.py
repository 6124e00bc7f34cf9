"""WebSocket close codes the server uses (the README's table lists them for clients).

4xxx mirror HTTP statuses so that client code can read them without a lookup table.
"""

NORMAL = 1000
GOING_AWAY = 1001  # server shutting down: reconnect, another instance will take you
POLICY_VIOLATION = 1008  # sustained abuse
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013  # the registry is unavailable, or lost this connection's record

CLOSED_BY_OPERATOR = 4000  # default of the disconnect API; callers may pick 4000-4999
INVALID_QUERY = 4400
NOT_AUTHENTICATED = 4401
FORBIDDEN = 4403
OVER_LIMIT = 4429
IDLE_TIMEOUT = 4408  # no client message for WS_IDLE_TIMEOUT_SECONDS
MAX_LIFETIME = 4410  # open for WS_MAX_LIFETIME_SECONDS: reconnect for a fresh connection
