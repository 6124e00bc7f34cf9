"""Create the connection registry's DynamoDB table, its indexes and TTL (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from realtime.registry import RegistryError, RegistryUnavailable
from realtime.registry.dynamodb import INSTANCE_INDEX, TENANT_INDEX
from realtime.server.runtime import runtime


class Command(BaseCommand):
    help = (
        "Create the DynamoDB table of live connections with its indexes and TTL on 'ttl'. "
        "On an existing table, add what is missing and report it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait", action="store_true", help="Wait until the table and its indexes are ACTIVE."
        )
        parser.add_argument("--table", help="Table name (default: DYNAMODB_TABLE_NAME).")

    def handle(self, *args, wait: bool, table: str | None, **options):
        registry = runtime().registry
        if table:
            registry = registry.with_table(table)
        try:
            report = registry.create_table(wait=wait)
        except RegistryUnavailable as exc:
            raise CommandError(_explain(exc, registry.location)) from exc
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc

        if report.created:
            indexes = f"{TENANT_INDEX}, {INSTANCE_INDEX}"
            done = f"Created table {report.table_name} (indexes {indexes}; TTL on ttl)"
        else:
            changes = []
            if report.indexes_created:
                changes.append(f"added indexes {', '.join(report.indexes_created)}")
            if report.ttl_enabled_now:
                changes.append("enabled TTL on ttl")
            changed = "; ".join(changes) or "nothing changed"
            done = f"Table {report.table_name} already exists; {changed}"
        self.stdout.write(f"{done}. Status: {report.status}")


def _explain(exc: RegistryUnavailable, endpoint_url: str) -> str:
    if exc.reason == "no_credentials":
        return (
            "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(environment or .env), or use an AWS profile or IAM role"
        )
    if exc.reason == "unreachable":
        return (
            f"could not reach DynamoDB at {endpoint_url}: is it running? "
            "(set DYNAMODB_ENDPOINT_URL for a local endpoint, unset it for AWS)"
        )
    if exc.reason == "timeout":
        return f"DynamoDB at {endpoint_url} did not answer in time: {exc}"
    return f"DynamoDB at {endpoint_url} is unavailable: {exc}"
