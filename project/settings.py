"""Settings, read from the environment (or `.env`) with django-environ.

Every variable is listed in `.env.example` and in the README's configuration table.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Values already in the environment win over the file; ENV_FILE lets tests and
# deployments point elsewhere (or at /dev/null).
_ENV_FILE = Path(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))
if _ENV_FILE.is_file():
    environ.Env.read_env(_ENV_FILE)

# Local development: `bin/serve` writes what it chose for the server it runs (its DynamoDB
# endpoint on a random port, dummy AWS keys, generated secrets) to .local/dev.env, so that
# commands run beside it (`bin/manage`) reach that server. The file loses to the environment
# and to .env, and is read only when LOCAL_ENV_FILE names it, or with DEBUG on when ENV_FILE is
# left at its default: production never reads it, nor do tests that pin their configuration.
_local_env_file = env.str("LOCAL_ENV_FILE", default="")
if _local_env_file:
    LOCAL_ENV_FILE: Path | None = Path(_local_env_file)
elif env.bool("DEBUG", default=False) and "ENV_FILE" not in env.ENVIRON:
    LOCAL_ENV_FILE = BASE_DIR / ".local" / "dev.env"
else:
    LOCAL_ENV_FILE = None
# The names the file supplied: `serve` starts a new local endpoint rather than reuse the URL
# of a previous run's.
_names_before = set(env.ENVIRON)
if LOCAL_ENV_FILE is not None and LOCAL_ENV_FILE.is_file():
    environ.Env.read_env(LOCAL_ENV_FILE)
LOCAL_ENV_NAMES = frozenset(set(env.ENVIRON) - _names_before)

# --- Django ---------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)

_INSECURE_SECRET_KEY = "django-insecure-local-development-only"
SECRET_KEY = env.str("SECRET_KEY", default="") or _INSECURE_SECRET_KEY
if not DEBUG and (SECRET_KEY == _INSECURE_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off"
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# HTTPS, for the admin and the API behind a TLS-terminating load balancer (off by default, for
# local development over http; the README's production settings turn them on, and
# `manage.py check --deploy` passes with them). The load balancer says the original scheme in
# X-Forwarded-Proto: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER is 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Prometheus scrapes inside the network, over http; the probes answer before any redirect.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)

INSTALLED_APPS = [
    "daphne",
    "realtime.operate.admin.site.OperatorAdminConfig",  # django.contrib.admin, operator pages
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "realtime",
]

MIDDLEWARE = [
    "realtime.operate.health.probes_before_host_check",  # load balancers probe by IP address
    "realtime.operate.middleware.refuse_unknown_hosts",  # one warning line, not a traceback
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "project.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
# Static files come straight from the installed apps (no STATIC_ROOT): no collectstatic step
# to forget.
WHITENOISE_USE_FINDERS = True

# --- Channel layer ----------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # redis-py's default socket timeout (5 s) equals channels_redis's
                        # blocking read (BZPOPMIN, 5 s): an idle consumer's read would race
                        # its own timeout and die with 1011. Twice the read still catches a
                        # dead connection.
                        "socket_timeout": 10,
                        "socket_connect_timeout": 2,
                    }
                ],
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Operator API ----------------------------------------------------------

# Bearer tokens accepted by the management API (comma-separated; several allow rotation).
API_TOKENS = [token for token in env.list("API_TOKENS", default=[]) if token]

# How long a request to one connection (send, disconnect) waits for the holding server's
# acknowledgement before the connection counts as gone.
DELIVERY_TIMEOUT_SECONDS = env.float("DELIVERY_TIMEOUT_SECONDS", default=3.0)

# --- The connection registry (names and defaults kept from the original server) ---

HOST = env.str("HOST", default="0.0.0.0")
PORT = env.int("PORT", default=8765)
AWS_REGION = env.str("AWS_REGION", default="us-east-1")
# Unset means boto3's standard credential chain (environment, profile, IAM role).
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
DYNAMODB_TABLE_NAME = env.str("DYNAMODB_TABLE_NAME", default="websocket_connections")
DYNAMODB_ENDPOINT_URL = env.str("DYNAMODB_ENDPOINT_URL", default="") or None
CONNECTION_TTL_SECONDS = env.int("CONNECTION_TTL_SECONDS", default=3600)
TTL_REFRESH_SECONDS = env.int("TTL_REFRESH_SECONDS", default=300)

# Client-side bounds on every DynamoDB call: a dead endpoint must fail fast.
DYNAMODB_CONNECT_TIMEOUT = env.float("DYNAMODB_CONNECT_TIMEOUT", default=1.0)
DYNAMODB_READ_TIMEOUT = env.float("DYNAMODB_READ_TIMEOUT", default=1.0)
DYNAMODB_MAX_ATTEMPTS = env.int("DYNAMODB_MAX_ATTEMPTS", default=2)
DYNAMODB_MAX_CONNECTIONS = env.int("DYNAMODB_MAX_CONNECTIONS", default=16)

WS_MAX_MESSAGE_BYTES = env.int("WS_MAX_MESSAGE_BYTES", default=65536)
WS_CONNECTION_TYPES = frozenset(env.list("WS_CONNECTION_TYPES", default=[]))

# --- Who may connect ---------------------------------------------------------

# "none": the query string alone admits a client (the original behaviour); "signed": the
# client also presents `token`, a JWT (HS256, WS_TOKEN_SECRET) binding tenant, deployment_id,
# connection_type and an expiry.
WS_AUTH = env.str("WS_AUTH", default="none")
if WS_AUTH not in ("none", "signed"):
    raise ImproperlyConfigured(f"WS_AUTH must be 'none' or 'signed', not {WS_AUTH!r}")
WS_TOKEN_SECRET = env.str("WS_TOKEN_SECRET", default="")
if WS_AUTH == "signed" and len(WS_TOKEN_SECRET) < 32:
    raise ImproperlyConfigured("WS_AUTH=signed needs WS_TOKEN_SECRET of at least 32 characters")
# The longest lifetime a token may be issued with (by the command and the API).
WS_TOKEN_MAX_TTL_SECONDS = env.int("WS_TOKEN_MAX_TTL_SECONDS", default=86400)
# Browser origins allowed to connect, in Channels' syntax: "https://app.example.com", or
# "https://.example.com" for every subdomain; empty allows any origin, and clients that send
# none (a list refuses clients without an Origin header unless it holds "*").
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=[])

# --- Limits (0 turns a limit off) ---------------------------------------------

# Client messages per second per connection, with bursts up to WS_RATE_BURST. A message over
# the rate gets an error frame; WS_RATE_ABUSE of them within ten seconds close with 1008.
WS_RATE_PER_SECOND = env.float("WS_RATE_PER_SECOND", default=20.0)
WS_RATE_BURST = env.int("WS_RATE_BURST", default=40)
WS_RATE_ABUSE = env.int("WS_RATE_ABUSE", default=20)
# Open connections per tenant across every instance; the next one is refused with 4429.
WS_TENANT_MAX_CONNECTIONS = env.int("WS_TENANT_MAX_CONNECTIONS", default=0)
# Close connections silent for this long (no client message), and any older than this.
WS_IDLE_TIMEOUT_SECONDS = env.int("WS_IDLE_TIMEOUT_SECONDS", default=0)
WS_MAX_LIFETIME_SECONDS = env.int("WS_MAX_LIFETIME_SECONDS", default=0)

# --- What one client can make a server hold (README, "Bounds") ------------------------------

# Data written to a connection that its client has not read yet; over it, the client is
# closed (1008 slow_consumer) and the buffer let go. Sixteen messages of the largest size.
WS_MAX_UNSENT_BYTES = env.int("WS_MAX_UNSENT_BYTES", default=1024 * 1024)
# From TCP accept to the end of the upgrade request's headers (and of the WebSocket opening
# handshake): a socket that trickles its request is closed.
HANDSHAKE_TIMEOUT_SECONDS = env.float("HANDSHAKE_TIMEOUT_SECONDS", default=10.0)
# Per client address (as the server sees it, X-Forwarded-For with --proxy-headers), on each
# instance: open connections, and handshakes per second with bursts. Off by default: behind a
# load balancer whose address the server sees for every client, or a NAT that a whole office
# or carrier network shares, any default would refuse ordinary clients (README, "Bounds").
WS_ADDRESS_MAX_CONNECTIONS = env.int("WS_ADDRESS_MAX_CONNECTIONS", default=0)
WS_ADDRESS_HANDSHAKE_RATE = env.float("WS_ADDRESS_HANDSHAKE_RATE", default=0.0)
WS_ADDRESS_HANDSHAKE_BURST = env.int("WS_ADDRESS_HANDSHAKE_BURST", default=100)

# Benchmarks only: "false" serves connections without recording them anywhere, to measure
# what the registry costs. Never in production: the registry is the product.
REGISTRY_ENABLED = env.bool("REGISTRY_ENABLED", default=True)

# --- The fleet ------------------------------------------------------------------

# Each instance renews a lease in the registry table every INSTANCE_HEARTBEAT_SECONDS; one
# whose renewal counter stands still for INSTANCE_LEASE_SECONDS is dead to the others (its
# connections leave every answer, a survivor deletes its items). The lease outlasts a stall
# of a few seconds (a GC pause, a slow Redis): a heartbeat before it began, the stall, and
# one renewal after it must fit in one lease.
INSTANCE_HEARTBEAT_SECONDS = env.float("INSTANCE_HEARTBEAT_SECONDS", default=3.0)
INSTANCE_LEASE_SECONDS = env.float("INSTANCE_LEASE_SECONDS", default=15.0)
if not 0 < INSTANCE_HEARTBEAT_SECONDS <= INSTANCE_LEASE_SECONDS / 3:
    raise ImproperlyConfigured(
        "INSTANCE_HEARTBEAT_SECONDS must be above 0 and at most INSTANCE_LEASE_SECONDS / 3 "
        f"(got {INSTANCE_HEARTBEAT_SECONDS} and {INSTANCE_LEASE_SECONDS})"
    )

# --- Shutdown and observability -------------------------------------------------

# On SIGTERM: stop accepting, close every client with 1001, deregister, exit within this bound.
DRAIN_SECONDS = env.float("DRAIN_SECONDS", default=20.0)
# The closes are spread evenly over this much of the drain, so that a restarted instance's
# clients reconnect to the others at a steady rate, not all in one second. At most half of
# DRAIN_SECONDS: the rest is for deleting the last slice's items. 0 closes all at once.
DRAIN_SPREAD_SECONDS = env.float("DRAIN_SPREAD_SECONDS", default=DRAIN_SECONDS / 2)
if not 0 <= DRAIN_SPREAD_SECONDS <= DRAIN_SECONDS / 2:
    raise ImproperlyConfigured(
        "DRAIN_SPREAD_SECONDS must be between 0 and DRAIN_SECONDS / 2 "
        f"(got {DRAIN_SPREAD_SECONDS} and {DRAIN_SECONDS})"
    )
# When set, /metrics asks for `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

if CONNECTION_TTL_SECONDS < 4 or not 1 <= TTL_REFRESH_SECONDS <= CONNECTION_TTL_SECONDS // 4:
    # The keeper sweeps every TTL_REFRESH_SECONDS and refreshes items with less than half
    # their TTL left; a sweep interval above a quarter of the TTL could let an item expire.
    raise ImproperlyConfigured(
        "TTL_REFRESH_SECONDS must be between 1 and CONNECTION_TTL_SECONDS / 4 "
        f"(got TTL_REFRESH_SECONDS={TTL_REFRESH_SECONDS}, "
        f"CONNECTION_TTL_SECONDS={CONNECTION_TTL_SECONDS})"
    )

# --- Logging --------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Whatever a library logs (Twisted's and autobahn's debug lines quote whole requests),
    # no client or API token reaches the output.
    "filters": {"redact_tokens": {"()": "realtime.core.logs.TokenRedactor"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Channels and Twisted are chatty at INFO about things operators do not act on.
        "django.channels.server": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
    },
}
