"""REGISTRY_ENABLED=false (benchmarks): every operator surface answers, none with a 500.

The disabled registry records nothing, so reads find nothing: lists are empty, a connection
is not found, counts are zero, /readyz is ready with the registry check "disabled", and
create_ws_table says in one line that there is no table to create.
"""

import asyncio
import json
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.test import AsyncClient

from realtime.registry.disabled import DisabledRegistry
from realtime.server.runtime import runtime

TOKEN = "disabled-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def disabled(settings):
    settings.REGISTRY_ENABLED = False
    settings.API_TOKENS = [TOKEN]
    assert isinstance(runtime().registry, DisabledRegistry)


def get(path: str) -> tuple[int, dict]:
    async def request():
        return await AsyncClient().get(path, headers={"Authorization": f"Bearer {TOKEN}"})

    response = asyncio.run(request())
    return response.status_code, json.loads(response.content)


def test_api_reads_answer_empty_not_500():
    assert get("/api/connections?tenant=acme") == (200, {"connections": [], "next_cursor": None})
    assert get("/api/connections?instance_id=some-instance") == (
        200,
        {"connections": [], "next_cursor": None},
    )
    assert get("/api/stats") == (200, {"total": 0, "tenants": {}})
    assert get("/api/stats?tenant=acme") == (200, {"total": 0, "tenants": {}})
    status, body = get(f"/api/connections/{uuid.uuid4()}")
    assert (status, body["code"]) == (404, "connection_not_found")


def test_readyz_is_ready_with_the_registry_check_disabled():
    status, body = get("/readyz")
    assert status == 200
    assert body["checks"]["dynamodb"] == "disabled"


def test_create_ws_table_refuses_in_one_line():
    with pytest.raises(CommandError) as refused:
        call_command("create_ws_table")
    assert "REGISTRY_ENABLED=false" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_list_connections_prints_none(capsys):
    call_command("list_connections", "--tenant", "acme")
    assert capsys.readouterr().out.strip().endswith("0 connections")
