"""The issue_token command: prints a token and nothing else, or refuses in one line."""

import io
import logging
import os
import time

import jwt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from realtime.core.handshake import ConnectionRequest
from realtime.core.tokens import verify_token
from tests.processes import manage

SECRET = "command-test-secret-0123456789abcdef"
ARGS = ["--tenant", "acme", "--deployment-id", "prod-1", "--connection-type", "client"]
REQUEST = ConnectionRequest("acme", "prod-1", "client")
VALUE_RULE = "1..128 characters of A-Z a-z 0-9 . _ -"


@pytest.fixture(autouse=True)
def token_settings(settings):
    settings.WS_TOKEN_SECRET = SECRET
    settings.WS_TOKEN_MAX_TTL_SECONDS = 86400
    settings.WS_CONNECTION_TYPES = frozenset()
    return settings


def issue(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refusal(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        issue(*args)
    return str(caught.value)


def lifetime(token: str) -> int:
    claims = jwt.decode(token, options={"verify_signature": False})
    return claims["exp"] - claims["iat"]


def test_prints_only_a_token_that_admits_the_request(caplog):
    caplog.set_level(logging.DEBUG)
    before = time.time()
    out, err = issue(*ARGS)
    token = out.removesuffix("\n")
    assert out == token + "\n" and "\n" not in token
    assert err == ""
    verify_token(token, REQUEST, secret=SECRET, now=time.time(), leeway=0)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert int(before) <= claims["iat"] <= time.time()
    assert token not in caplog.text


def test_default_lifetime_is_an_hour_capped_by_the_maximum(token_settings):
    assert lifetime(issue(*ARGS)[0].strip()) == 3600
    token_settings.WS_TOKEN_MAX_TTL_SECONDS = 600
    assert lifetime(issue(*ARGS)[0].strip()) == 600


@pytest.mark.parametrize("ttl", ["1", "600", "86400"])
def test_ttl_within_the_maximum_is_used(ttl):
    assert lifetime(issue(*ARGS, "--ttl", ttl)[0].strip()) == int(ttl)


@pytest.mark.parametrize("ttl", ["0", "-5", "86401", "999999999999"])
def test_ttl_outside_1_to_the_maximum_is_refused(ttl):
    assert (
        refusal(*ARGS, "--ttl", ttl) == "--ttl must be from 1 to 86400 (WS_TOKEN_MAX_TTL_SECONDS)"
    )


def test_ttl_must_be_an_integer():
    assert refusal(*ARGS, "--ttl", "1.5") == "Error: argument --ttl: invalid int value: '1.5'"


@pytest.mark.parametrize("secret", ["", "x" * 31], ids=["unset", "too-short"])
def test_without_a_usable_secret_nothing_is_issued(token_settings, secret):
    token_settings.WS_TOKEN_SECRET = secret
    assert refusal(*ARGS) == ("WS_TOKEN_SECRET (32+ characters) is not set: no token can be issued")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--tenant", ""),
        ("--tenant", "ac me"),
        ("--deployment-id", "prod#1"),
        ("--deployment-id", "x" * 129),
        ("--connection-type", "café"),
        ("--connection-type", "a/b"),
    ],
)
def test_values_that_break_the_handshake_rule_are_refused(flag, value):
    args = list(ARGS)
    args[args.index(flag) + 1] = value
    assert refusal(*args) == f"{flag} must be {VALUE_RULE}"


def test_connection_type_this_server_refuses_is_refused(token_settings):
    token_settings.WS_CONNECTION_TYPES = frozenset({"browser", "service"})
    assert refusal(*ARGS) == (
        "--connection-type 'client' is not accepted by this server (WS_CONNECTION_TYPES)"
    )
    args = [*ARGS[:-1], "service"]
    assert issue(*args)[0].strip()


@pytest.mark.parametrize("missing", ["--tenant", "--deployment-id", "--connection-type"])
def test_every_value_is_required(missing):
    args = list(ARGS)
    index = args.index(missing)
    del args[index : index + 2]
    assert refusal(*args) == f"Error: the following arguments are required: {missing}"


def test_token_can_be_captured_from_a_shell():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "WS_TOKEN_SECRET": SECRET,
        "WS_TOKEN_MAX_TTL_SECONDS": "600",
    }
    done = manage(env, "issue_token", *ARGS, "--ttl", "60")
    assert (done.returncode, done.stderr) == (0, "")
    token = done.stdout.removesuffix("\n")
    assert done.stdout.count("\n") == 1
    verify_token(token, REQUEST, secret=SECRET, now=time.time())
    assert lifetime(token) == 60

    refused = manage(env, "issue_token", *ARGS, "--ttl", "601")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        "CommandError: --ttl must be from 1 to 600 (WS_TOKEN_MAX_TTL_SECONDS)\n"
    )
