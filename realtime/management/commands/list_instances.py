"""List the server instances of the fleet, as their leases in the registry table say."""

import json

from django.core.management.base import BaseCommand, CommandError

from realtime.core.leases import INSTANCE_FIELDS
from realtime.management.tables import write_table
from realtime.registry import RegistryError
from realtime.server.runtime import runtime


class Command(BaseCommand):
    help = (
        "List server instances: live ones renew their lease; 'reaping' ones were found dead "
        "and a survivor is deleting their connections' items."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="one JSON object per line"
        )

    def handle(self, *args, as_json, **options):
        try:
            leases = runtime().registry.leases()
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        views = [lease.operator_fields() for lease in leases]  # oldest first
        if as_json:
            for view in views:
                self.stdout.write(json.dumps(view))
            return
        rows = [[str(view[name]) for name in INSTANCE_FIELDS] for view in views]
        write_table(self.stdout, INSTANCE_FIELDS, rows, noun="instance")
