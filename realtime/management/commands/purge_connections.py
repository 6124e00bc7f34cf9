"""Delete registry items that no live connection stands behind.

Two kinds: every item of a server instance that died without cleaning up (`--instance ID`),
and items past their TTL that DynamoDB has not deleted yet (`--expired`). Survivors reap a
dead instance by themselves within a lease; this is for when none is running.

An instance whose lease is live is refused unless `--force`: purging a live instance's items
is safe but disruptive (its connections find their items gone at their next TTL refresh and
are closed with 1013, and their clients reconnect).
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
        parser.add_argument(
            "--force", action="store_true", help="purge an --instance even if its lease is live"
        )

    def handle(self, *args, instance, expired, dry_run, force, **options):
        if not instance and not expired:
            raise CommandError("say what to purge: --instance ID and/or --expired")
        registry = runtime().registry
        try:
            targets = {}
            tenants = {}
            for instance_id in instance:
                lease = registry.lease(instance_id)
                if lease is not None and lease.is_live and not force:
                    raise CommandError(
                        f"instance {instance_id} is live (it renewed its lease at "
                        f"{lease.operator_fields()['last_renewal']}, its own clock): its "
                        "connections are open. Purge it anyway with --force"
                    )
                held = list(registry.for_instance(instance_id, include_expired=True))
                targets[f"instance {instance_id}"] = [c.connection_id for c in held]
                tenants.update((c.connection_id, c.tenant) for c in held)
            if expired:
                targets["expired"] = list(registry.expired_ids())
            failed_total = 0
            for label, ids in targets.items():
                if dry_run:
                    self.stdout.write(f"{label}: {len(ids)} items would be deleted")
                    continue
                failed = registry.deregister_many(ids, tenants=tenants)
                failed_total += len(failed)
                self.stdout.write(f"{label}: deleted {len(ids) - len(failed)} of {len(ids)} items")
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        if failed_total:
            raise CommandError(f"{failed_total} items could not be deleted; run again")
