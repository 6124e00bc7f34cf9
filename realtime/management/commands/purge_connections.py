"""Delete registry items that no live connection stands behind.

Two kinds: every item of a server instance that died without cleaning up (`--instance ID`),
and items past their TTL that DynamoDB has not deleted yet (`--expired`). Purging the items
of a live instance is safe but disruptive: its connections find their items gone at their
next TTL refresh and are closed with 1013, and their clients reconnect.
"""

from django.core.management.base import BaseCommand, CommandError

from realtime.registry import RegistryError
from realtime.server.runtime import runtime


class Command(BaseCommand):
    help = "Delete the items of a dead server instance and/or expired items."

    def add_arguments(self, parser):
        parser.add_argument(
            "--instance", action="append", default=[], help="a dead instance's id (repeatable)"
        )
        parser.add_argument("--expired", action="store_true", help="items past their ttl (a Scan)")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args, instance, expired, dry_run, **options):
        if not instance and not expired:
            raise CommandError("say what to purge: --instance ID and/or --expired")
        registry = runtime().registry
        try:
            targets = {}
            for instance_id in instance:
                held = registry.for_instance(instance_id, include_expired=True)
                targets[f"instance {instance_id}"] = [c.connection_id for c in held]
            if expired:
                targets["expired"] = list(registry.expired_ids())
            failed_total = 0
            for label, ids in targets.items():
                if dry_run:
                    self.stdout.write(f"{label}: {len(ids)} items would be deleted")
                    continue
                failed = registry.deregister_many(ids)
                failed_total += len(failed)
                self.stdout.write(f"{label}: deleted {len(ids) - len(failed)} of {len(ids)} items")
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        if failed_total:
            raise CommandError(f"{failed_total} items could not be deleted; run again")
