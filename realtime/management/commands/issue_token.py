"""Print a client token (WS_AUTH=signed) for one tenant, deployment and connection type.

The token alone goes to stdout, so that a script can capture it:

    TOKEN=$(python manage.py issue_token --tenant acme --deployment-id prod-1 \\
            --connection-type client --ttl 600)

Every refusal is a one-line CommandError; the token is never logged.
"""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from realtime.core.handshake import VALUE_RULE, ConnectionRequest, is_valid_value
from realtime.core.tokens import (
    DEFAULT_TTL_SECONDS,
    MIN_SECRET_LENGTH,
    default_ttl_seconds,
    is_usable_secret,
    issue_token,
)


class Command(BaseCommand):
    help = "Print a client token for one tenant, deployment and connection type."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--deployment-id", required=True)
        parser.add_argument("--connection-type", required=True)
        parser.add_argument(
            "--ttl",
            type=int,
            default=None,
            help=f"seconds the token can be used to connect (default {DEFAULT_TTL_SECONDS}, "
            "at most WS_TOKEN_MAX_TTL_SECONDS)",
        )

    def handle(self, *args, tenant, deployment_id, connection_type, ttl, **options):
        secret = settings.WS_TOKEN_SECRET
        if not is_usable_secret(secret):
            raise CommandError(
                f"WS_TOKEN_SECRET ({MIN_SECRET_LENGTH}+ characters) is not set: "
                "no token can be issued"
            )
        values = {
            "--tenant": tenant,
            "--deployment-id": deployment_id,
            "--connection-type": connection_type,
        }
        for flag, value in values.items():
            if not is_valid_value(value):
                raise CommandError(f"{flag} must be {VALUE_RULE}")
        allowed = settings.WS_CONNECTION_TYPES
        if allowed and connection_type not in allowed:
            raise CommandError(
                f"--connection-type '{connection_type}' is not accepted by this server "
                "(WS_CONNECTION_TYPES)"
            )
        max_ttl = settings.WS_TOKEN_MAX_TTL_SECONDS
        if ttl is None:
            ttl = default_ttl_seconds(max_ttl)
        if not 1 <= ttl <= max_ttl:
            raise CommandError(f"--ttl must be from 1 to {max_ttl} (WS_TOKEN_MAX_TTL_SECONDS)")
        request = ConnectionRequest(tenant, deployment_id, connection_type)
        self.stdout.write(issue_token(request, secret=secret, ttl_seconds=ttl, now=time.time()))
