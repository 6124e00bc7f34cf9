"""`python manage.py create_ws_table`: output, idempotency, options and one-line errors."""

import io
import time

import boto3
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from realtime.management.commands.create_ws_table import Command
from tests.conftest import EXPECTED_INDEXES
from tests.processes import base_env, manage, moto_server
from tests.registry.store import free_port

TABLE = "tests_connections"  # DYNAMODB_TABLE_NAME in tests/settings.py
CREATED = f"Created table {TABLE} (indexes by_tenant, by_instance; TTL on ttl). Status: ACTIVE\n"


def create_ws_table(*args: str) -> str:
    out = io.StringIO()
    call_command("create_ws_table", *args, stdout=out)
    return out.getvalue()


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the command as manage.py does (argv parsing, error printing, exit status)."""
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "create_ws_table", *args])
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def http_client(endpoint_url: str):
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def table_state(dynamodb, name: str = TABLE) -> tuple[dict, dict]:
    table = dynamodb.describe_table(TableName=name)["Table"]
    indexes = {
        i["IndexName"]: (i["KeySchema"], i["IndexStatus"])
        for i in table.get("GlobalSecondaryIndexes", [])
    }
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return {"status": table["TableStatus"], "indexes": indexes}, ttl


ACTIVE_TABLE = {
    "status": "ACTIVE",
    "indexes": {name: (schema, "ACTIVE") for name, schema in EXPECTED_INDEXES.items()},
}
TTL_ON = {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


def create_original_table(dynamodb, *, key: str = "connection_id", ttl: bool) -> None:
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if ttl:
        dynamodb.update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )


# --- against moto's in-process mock ---------------------------------------------


def test_creates_the_table_its_indexes_and_ttl(aws, mocked_client):
    assert create_ws_table() == CREATED
    assert table_state(mocked_client) == (ACTIVE_TABLE, TTL_ON)


def test_a_second_run_reports_the_existing_table_and_changes_nothing(aws, mocked_client):
    create_ws_table()

    assert create_ws_table() == f"Table {TABLE} already exists; nothing changed. Status: ACTIVE\n"
    assert table_state(mocked_client) == (ACTIVE_TABLE, TTL_ON)


def test_upgrades_the_original_servers_table(aws, mocked_client):
    create_original_table(mocked_client, ttl=True)

    assert create_ws_table() == (
        f"Table {TABLE} already exists; added indexes by_tenant, by_instance. Status: ACTIVE\n"
    )
    assert table_state(mocked_client) == (ACTIVE_TABLE, TTL_ON)


def test_reports_enabling_ttl_and_adding_indexes_on_an_existing_table(aws, mocked_client):
    create_original_table(mocked_client, ttl=False)

    assert create_ws_table("--wait") == (
        f"Table {TABLE} already exists; added indexes by_tenant, by_instance; "
        "enabled TTL on ttl. Status: ACTIVE\n"
    )
    assert table_state(mocked_client) == (ACTIVE_TABLE, TTL_ON)


def test_wait_returns_once_the_table_and_indexes_are_active(aws, mocked_client):
    assert create_ws_table("--wait") == CREATED
    assert table_state(mocked_client) == (ACTIVE_TABLE, TTL_ON)


def test_table_option_overrides_the_configured_name(aws, mocked_client):
    output = create_ws_table("--table", "other_connections")

    assert output == CREATED.replace(TABLE, "other_connections")
    assert mocked_client.list_tables()["TableNames"] == ["other_connections"]
    assert table_state(mocked_client, "other_connections") == (ACTIVE_TABLE, TTL_ON)


def test_a_table_with_another_key_schema_is_one_line_error(aws, mocked_client, capsys):
    create_original_table(mocked_client, key="pk", ttl=False)

    code, out, err = run_cli(capsys)

    assert (code, out) == (1, "")
    assert err == (
        f"CommandError: table {TABLE} exists with key schema [('pk', 'HASH')], "
        "expected connection_id as its only (hash) key\n"
    )
    assert table_state(mocked_client)[0] == {"status": "ACTIVE", "indexes": {}}


# --- errors before any table exists ---------------------------------------------


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """Nothing in settings, environment or files from which boto3 could find credentials.

    The endpoint is a closed local port: were credentials found anyway, the test would fail
    with "could not reach", never talk to AWS.
    """
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "no-boto-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with override_settings(
        AWS_ACCESS_KEY_ID=None,
        AWS_SECRET_ACCESS_KEY=None,
        DYNAMODB_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
    ):
        yield


def test_missing_credentials_are_one_line_error(no_credentials, capsys):
    started = time.monotonic()

    code, out, err = run_cli(capsys)

    assert time.monotonic() - started < 5
    assert (code, out) == (1, "")
    assert err == (
        "CommandError: no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
        "(environment or .env), or use an AWS profile or IAM role\n"
    )


def test_an_unreachable_endpoint_is_one_line_error_naming_it(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    with override_settings(
        DYNAMODB_ENDPOINT_URL=url, DYNAMODB_CONNECT_TIMEOUT=0.5, DYNAMODB_READ_TIMEOUT=0.5
    ):
        started = time.monotonic()
        code, out, err = run_cli(capsys, "--wait")
        elapsed = time.monotonic() - started

    assert elapsed < 5
    assert (code, out) == (1, "")
    assert err == (
        f"CommandError: could not reach DynamoDB at {url}: is it running? "
        "(set DYNAMODB_ENDPOINT_URL for a local endpoint, unset it for AWS)\n"
    )


def test_errors_reach_call_command_as_command_error(no_credentials):
    with pytest.raises(CommandError, match=r"^no AWS credentials found: "):
        call_command("create_ws_table")


# --- the real thing: a subprocess against moto's server over HTTP ---------------


@pytest.mark.e2e
def test_manage_py_creates_the_table_on_a_real_endpoint():
    server = moto_server().start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        result = manage(
            base_env(
                SECRET_KEY="cli-tests-secret-key-0123456789abcdef",
                DATABASE_URL="sqlite://:memory:",
                DYNAMODB_ENDPOINT_URL=url,
                DYNAMODB_TABLE_NAME="cli_connections",
            ),
            "create_ws_table",
            "--wait",
        )

        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout == CREATED.replace(TABLE, "cli_connections")
        assert table_state(http_client(url), "cli_connections") == (ACTIVE_TABLE, TTL_ON)
    finally:
        server.stop()
