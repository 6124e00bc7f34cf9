"""`python manage.py serve`: the whole server for local development, in one command.

Starts moto's DynamoDB server on a free loopback port unless DYNAMODB_ENDPOINT_URL is set,
creates the table, applies migrations (SQLite by default), then runs daphne on HOST:PORT until
interrupted, and stops what it started. Production runs daphne directly (see the README).
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from realtime.registry import RegistryError
from realtime.registry.dynamodb import DynamoDBRegistry, make_client

_MOTO_READY = re.compile(rb"Running on (http://127\.0\.0\.1:\d+)")


class Command(BaseCommand):
    help = "Run the server for local development, with a local DynamoDB endpoint if none is set."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.HOST, help="bind address (HOST)")
        parser.add_argument("--port", type=int, default=settings.PORT, help="port (PORT)")

    def handle(self, *args, host, port, **options):
        env = dict(os.environ)
        moto = None
        try:
            endpoint = settings.DYNAMODB_ENDPOINT_URL
            if endpoint is None:
                moto, endpoint = self._start_local_dynamodb()
                # moto accepts any credentials; real ones must never be sent to it.
                env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")
            env["DYNAMODB_ENDPOINT_URL"] = endpoint
            self._create_table(endpoint, env)
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write(f"Serving ws://{host}:{port}/ (DynamoDB at {endpoint}); Ctrl-C stops")
            returncode = self._run_daphne(host, port, env)
        finally:
            if moto is not None:
                moto.terminate()
                moto.wait(10)
        if returncode not in (0, -signal.SIGINT, -signal.SIGTERM):
            raise CommandError(f"daphne exited with status {returncode}")

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
            "could not start the local DynamoDB endpoint (moto); install requirements-dev.txt"
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
