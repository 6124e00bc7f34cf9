"""List live connections of a tenant (optionally one deployment and type) or of an instance."""

import json

from django.core.management.base import BaseCommand, CommandError

from realtime.core.connection import OPERATOR_FIELDS
from realtime.management.tables import write_table
from realtime.registry import RegistryError
from realtime.server.runtime import runtime

# The record's operator fields but its expiry, which moves with every refresh and would widen
# each row for little; `--json` has it.
_COLUMNS = tuple(name for name in OPERATOR_FIELDS if name != "expires_at")


class Command(BaseCommand):
    help = "List live connections by tenant [, deployment [, type]], or by server instance."

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--tenant")
        scope.add_argument("--instance", help="a server instance id (see the instance_id column)")
        parser.add_argument("--deployment-id")
        parser.add_argument("--connection-type")
        parser.add_argument("--limit", type=int, default=0, help="stop after this many (0: all)")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="one JSON object per line"
        )

    def handle(
        self, *args, tenant, instance, deployment_id, connection_type, limit, as_json, **options
    ):
        if instance and (deployment_id or connection_type):
            raise CommandError("--deployment-id and --connection-type narrow a --tenant listing")
        try:
            connections = list(
                self._connections(tenant, instance, deployment_id, connection_type, limit)
            )
        except (RegistryError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if as_json:
            for connection in connections:
                self.stdout.write(_json_line(connection))
            return
        rows = [[_field(c, name) for name in _COLUMNS] for c in connections]
        write_table(self.stdout, _COLUMNS, rows, noun="connection")

    def _connections(self, tenant, instance, deployment_id, connection_type, limit):
        registry = runtime().registry
        registry.leases()  # what the fleet wrote off is left out of what follows
        if instance:
            source = registry.for_instance(instance)
        else:
            source = _pages(registry, tenant, deployment_id, connection_type)
        for count, connection in enumerate(source, start=1):
            yield connection
            if count == limit:
                return


def _pages(registry, tenant, deployment_id, connection_type):
    cursor = None
    while True:
        page = registry.for_tenant(
            tenant,
            deployment_id=deployment_id,
            connection_type=connection_type,
            limit=1000,
            cursor=cursor,
        )
        yield from page.connections
        if page.cursor is None:
            return
        cursor = page.cursor


def _field(connection, name: str) -> str:
    return str(getattr(connection, name))


def _json_line(connection) -> str:
    return json.dumps(connection.operator_fields())
