"""`python manage.py serve`: the whole server for local development, in one command.

Starts moto's DynamoDB server on a free loopback port unless DYNAMODB_ENDPOINT_URL is set,
creates the table, applies migrations (SQLite by default), writes what it chose to the local
settings file (settings.LOCAL_ENV_FILE, `.local/dev.env`) so that commands run beside it
(`bin/manage ...`) reach this server, prints how to reach the API and the admin, then runs
daphne on HOST:PORT until interrupted, and stops what it started. Production runs daphne
directly (see the README).
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from realtime.registry import RegistryError
from realtime.registry.dynamodb import DynamoDBRegistry, make_client

_MOTO_READY = re.compile(rb"Running on (http://127\.0\.0\.1:\d+)")

# moto accepts any credentials; real ones must never be sent to it.
_LOCAL_AWS_KEYS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}

# Secrets a local server needs and nobody has to choose: generated once, then kept in the
# local settings file, so that a restart keeps admin sessions, API calls and client tokens.
_GENERATED_SECRETS = ("SECRET_KEY", "API_TOKENS", "WS_TOKEN_SECRET")

_LOCAL_ENV_HEADER = """\
# Written by `bin/serve` (manage.py serve) for the local server it runs: read by `bin/manage`,
# and by the settings when DEBUG is on. Local development only; values in the environment and
# in .env win. The secrets are generated once and kept across restarts.
"""

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Run the server for local development, with a local DynamoDB endpoint if none is set."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOST, help="bind address (HOST)")
        parser.add_argument("--port", type=int, default=settings.PORT, help="port (PORT)")
        parser.add_argument(
            "--create-admin",
            action="store_true",
            help=f"create the superuser '{ADMIN_USERNAME}' with a generated password (printed "
            "once) unless it exists",
        )

    def handle(self, *args, host, port, create_admin, **options):
        moto = None
        try:
            moto, local = self._local_settings()
            endpoint = local["DYNAMODB_ENDPOINT_URL"]
            env = {**os.environ, **local}
            self._create_table(endpoint, env)
            call_command("migrate", interactive=False, verbosity=0)
            if settings.LOCAL_ENV_FILE is not None:
                write_local_env(settings.LOCAL_ENV_FILE, local)
            self.stdout.write(f"Serving ws://{host}:{port}/ (DynamoDB at {endpoint}); Ctrl-C stops")
            self._print_access(host, port, local, create_admin)
            returncode = self._run_daphne(host, port, env)
        finally:
            if moto is not None:
                moto.terminate()
                moto.wait(10)
        if returncode not in (0, -signal.SIGINT, -signal.SIGTERM):
            raise CommandError(f"daphne exited with status {returncode}")

    def _local_settings(self) -> tuple[subprocess.Popen | None, dict[str, str]]:
        """What this server runs with beyond the environment and .env: DEBUG, its endpoint (a
        new local one unless one is configured), dummy keys for a local one, and the secrets.
        Returns the local endpoint's process (None when configured) and those settings."""
        moto = None
        local = {"DEBUG": "true" if settings.DEBUG else "false"}
        endpoint = settings.DYNAMODB_ENDPOINT_URL
        if "DYNAMODB_ENDPOINT_URL" in settings.LOCAL_ENV_NAMES:
            endpoint = None  # a previous run's local endpoint, stopped with it
        if endpoint is None:
            moto, endpoint = self._start_local_dynamodb()
            local.update(_LOCAL_AWS_KEYS)
        local["DYNAMODB_ENDPOINT_URL"] = endpoint
        local.update(_secrets())
        return moto, local

    def _start_local_dynamodb(self) -> tuple[subprocess.Popen, str]:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it after daphne
        )
        deadline = time.monotonic() + 30
        for line in moto.stdout:
            match = _MOTO_READY.search(line)
            if match:
                # Keep reading its request log so that it never blocks on a full pipe.
                threading.Thread(target=moto.stdout.read, daemon=True).start()
                return moto, match.group(1).decode()
            if time.monotonic() > deadline:
                break
        moto.kill()
        raise CommandError(
            "could not start the local DynamoDB endpoint (moto); install requirements-local.txt"
        )

    def _create_table(self, endpoint: str, env: dict) -> None:
        client = make_client(
            region=settings.AWS_REGION,
            endpoint_url=endpoint,
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        )
        registry = DynamoDBRegistry(client=client, table_name=settings.DYNAMODB_TABLE_NAME)
        try:
            report = registry.create_table(wait=True)
        except RegistryError as exc:
            raise CommandError(f"could not prepare table {registry.table_name}: {exc}") from exc
        state = "created" if report.created else "exists"
        self.stdout.write(f"Table {report.table_name}: {state}")

    def _print_access(self, host: str, port: int, local: dict, create_admin: bool) -> None:
        """How to reach the running server from a second terminal: commands, API, admin."""
        base = f"http://{_reachable(host)}:{port}"
        if settings.LOCAL_ENV_FILE is not None:
            self.stdout.write(
                f"Local settings in {_shown(settings.LOCAL_ENV_FILE)}; from another terminal: "
                "bin/manage list_connections --tenant acme"
            )
        token = local["API_TOKENS"].split(",")[0]
        self.stdout.write(
            f'API: curl -H "Authorization: Bearer {token}" "{base}/api/connections?tenant=acme"'
        )
        self.stdout.write(f"Admin: {base}/admin/ {self._admin_login(create_admin)}")

    def _admin_login(self, create_admin: bool) -> str:
        users = get_user_model().objects
        if create_admin and not users.filter(username=ADMIN_USERNAME).exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser(ADMIN_USERNAME, email="", password=password)
            return f"as {ADMIN_USERNAME} / {password} (created now; shown once)"
        superuser = users.filter(is_superuser=True).order_by("pk").first()
        if superuser is not None:
            name = superuser.get_username()
            return f"as {name} (forgot the password? bin/manage changepassword {name})"
        return "(no user yet: bin/manage createsuperuser, or bin/serve --create-admin)"

    def _run_daphne(self, host: str, port: int, env: dict) -> int:
        daphne = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                host,
                "-p",
                str(port),
                "project.asgi:application",
            ],
            env=env,
            start_new_session=True,  # signals reach daphne once, forwarded by us
        )

        def forward(signum, frame):
            daphne.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        return daphne.wait()


def _secrets() -> dict[str, str]:
    """The configured value of each secret (environment, .env or a previous run's local file),
    or a new random one."""
    return {name: os.environ.get(name) or secrets.token_urlsafe(32) for name in _GENERATED_SECRETS}


def write_local_env(path: Path, values: dict[str, str]) -> None:
    """Write `values` as NAME=value lines, readable by their owner only (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{name}={value}\n" for name, value in values.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode otherwise
    with os.fdopen(fd, "w") as file:
        file.write(_LOCAL_ENV_HEADER + lines)


def _reachable(host: str) -> str:
    """An address a browser on this machine can use for a server bound to `host`."""
    if host in ("", "0.0.0.0", "::"):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
