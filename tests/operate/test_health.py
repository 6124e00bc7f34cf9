"""/healthz, /readyz and /metrics in-process: Django's AsyncClient, moto's mock or a dead port."""

import asyncio
import json
import logging

import pytest
from django.test import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from realtime.operate import health
from realtime.registry.dynamodb import DynamoDBRegistry, make_client
from realtime.server.runtime import runtime
from tests.conftest import FakeClock, use_registry
from tests.processes import free_port

TOKEN = "metrics-token-0123456789"


def get(path: str, *, method: str = "GET", **headers: str):
    async def request():
        return await AsyncClient().generic(method, path, headers=headers)

    return asyncio.run(request())


def body(response) -> dict:
    return json.loads(response.content)


class CountingDescribe:
    """Replaces a registry's describe_table, counting the calls that reach DynamoDB."""

    def __init__(self, registry: DynamoDBRegistry):
        self.real = registry.describe_table
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.real()


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """The readiness cache's clock; every test starts with an empty cache, not draining."""
    clock = FakeClock(1000.0)
    cached = health.CachedCheck(
        health.check_dynamodb, seconds=health.DYNAMODB_CACHE_SECONDS, clock=clock
    )
    monkeypatch.setattr(health, "_dynamodb", cached)
    monkeypatch.setattr(health, "_was_ready", None)
    return clock


def use(monkeypatch, registry: DynamoDBRegistry) -> CountingDescribe:
    counting = CountingDescribe(registry)
    monkeypatch.setattr(registry, "describe_table", counting)
    use_registry(registry)
    return counting


@pytest.fixture
def ready(aws, mocked_client, settings, monkeypatch, clock) -> CountingDescribe:
    """The process registry on moto's mock, its table created."""
    registry = DynamoDBRegistry(client=mocked_client, table_name=settings.DYNAMODB_TABLE_NAME)
    registry.create_table()
    return use(monkeypatch, registry)


@pytest.fixture
def unreachable(monkeypatch, clock) -> CountingDescribe:
    """The process registry pointed at a closed port: every call is refused."""
    client = make_client(
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="testing",
        secret_access_key="testing",
        connect_timeout=0.5,
        read_timeout=0.5,
        max_attempts=1,
    )
    return use(monkeypatch, DynamoDBRegistry(client=client, table_name="tests_connections"))


READY = {"status": "ready", "checks": {"dynamodb": "ok", "channel_layer": "ok"}}


# --- /healthz ---------------------------------------------------------------------------


def test_healthz_is_ok_without_touching_dynamodb(unreachable):
    runtime().start_draining()  # alive while draining: an orchestrator must not kill it

    response = get("/healthz")

    assert (response.status_code, body(response)) == (200, {"status": "ok"})
    assert response["Cache-Control"] == "no-store"
    assert unreachable.calls == 0


def test_health_endpoints_answer_get_and_head_only(clock):
    assert get("/healthz", method="HEAD").status_code == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        assert get(path, method="POST").status_code == 405


# --- /readyz ------------------------------------------------------------------------------


def test_readyz_is_ready_when_the_table_and_the_channel_layer_answer(ready):
    response = get("/readyz")

    assert (response.status_code, body(response)) == (200, READY)
    assert response["Cache-Control"] == "no-store"
    assert ready.calls == 1


def test_readyz_is_503_when_dynamodb_is_unreachable(unreachable, caplog):
    caplog.set_level(logging.INFO, logger="realtime.operate.health")

    response = get("/readyz")

    assert response.status_code == 503
    assert body(response) == {
        "status": "not_ready",
        "checks": {"dynamodb": "unreachable", "channel_layer": "ok"},
    }
    assert "127.0.0.1" not in response.content.decode()  # reasons, never endpoints
    assert caplog.messages == ["health.not_ready dynamodb=unreachable channel_layer=ok"]


def test_readyz_is_503_when_the_table_is_missing(aws, mocked_client, monkeypatch, clock):
    use(monkeypatch, DynamoDBRegistry(client=mocked_client, table_name="tests_connections"))

    response = get("/readyz")

    assert response.status_code == 503
    assert body(response)["checks"] == {"dynamodb": "table_not_found", "channel_layer": "ok"}


def test_readyz_is_503_while_draining_without_checking_anything(ready):
    runtime().start_draining()
    runtime().start_draining()  # idempotent

    response = get("/readyz")

    assert (response.status_code, body(response)) == (503, {"status": "draining"})
    assert response["Cache-Control"] == "no-store"
    assert ready.calls == 0
    assert runtime().is_draining()


def test_the_dynamodb_answer_is_reused_for_two_seconds(ready, clock):
    assert get("/readyz").status_code == 200
    clock.advance(1.9)
    assert get("/readyz").status_code == 200
    assert ready.calls == 1

    clock.advance(0.1)
    assert get("/readyz").status_code == 200
    assert ready.calls == 2


def test_a_failed_answer_is_reused_too(unreachable, clock):
    assert get("/readyz").status_code == 503
    clock.advance(1.0)
    assert get("/readyz").status_code == 503
    assert unreachable.calls == 1


def test_concurrent_checks_share_one_run_that_a_leaving_caller_does_not_cancel(clock):
    runs = 0

    async def slow() -> str:
        nonlocal runs
        runs += 1
        await release.wait()
        return "ok"

    async def scenario():
        cached = health.CachedCheck(slow, seconds=2.0, clock=clock)
        callers = [asyncio.ensure_future(cached()) for _ in range(8)]
        await asyncio.sleep(0)  # every caller is now waiting on the run
        callers[0].cancel()
        release.set()
        return await asyncio.gather(*callers[1:])

    release = asyncio.Event()
    assert asyncio.run(scenario()) == ["ok"] * 7
    assert runs == 1


def test_state_changes_are_logged_once_each(monkeypatch, clock, caplog):
    answers = iter(["ok", "timeout", "timeout", "ok"])

    async def scripted() -> str:
        return next(answers)

    monkeypatch.setattr(health, "_dynamodb", health.CachedCheck(scripted, seconds=0))
    caplog.set_level(logging.INFO, logger="realtime.operate.health")

    assert [get("/readyz").status_code for _ in range(4)] == [200, 503, 503, 200]
    assert caplog.messages == [
        "health.not_ready dynamodb=timeout channel_layer=ok",
        "health.ready",
    ]


def redis_layer(address: str) -> dict:
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": address, "socket_connect_timeout": 1}]},
        }
    }


def test_readyz_is_503_when_redis_is_unreachable(ready, settings):
    settings.CHANNEL_LAYERS = redis_layer(f"redis://127.0.0.1:{free_port()}/0")

    response = get("/readyz")

    assert response.status_code == 503
    assert body(response)["checks"] == {"dynamodb": "ok", "channel_layer": "unreachable"}


def test_a_layer_backend_that_is_not_checked_is_not_ready(ready, settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {}}
    }

    response = get("/readyz")

    assert response.status_code == 503
    assert body(response)["checks"]["channel_layer"] == "unsupported_layer"


# --- /metrics -----------------------------------------------------------------------------


def test_metrics_are_open_without_a_token(ready, settings):
    settings.METRICS_TOKEN = ""
    get("/readyz")  # one DescribeTable, through the instrumented registry

    response = get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    counts = {
        s.labels["operation"]: s.value
        for s in families["realtime_registry_call_seconds"].samples
        if s.name == "realtime_registry_call_seconds_count"
    }
    assert counts["DescribeTable"] >= 1
    assert "realtime_connections_open" in families


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x", f"{TOKEN}"],
    ids=["none", "wrong", "basic", "empty", "longer", "no-scheme"],
)
def test_metrics_with_a_token_refuse_anything_else(settings, caplog, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {"Authorization": authorization} if authorization else {}

    response = get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert body(response)["code"] == "invalid_token"
    assert caplog.messages == ["metrics.auth_failed client=127.0.0.1"]
    assert TOKEN not in response.content.decode()


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_metrics_with_a_token_accept_it(settings, caplog, scheme):
    settings.METRICS_TOKEN = TOKEN

    response = get("/metrics", Authorization=f"{scheme} {TOKEN}")

    assert response.status_code == 200
    assert b"realtime_connections_open" in response.content
    assert caplog.messages == []


def test_probes_answer_whatever_the_host_header(client, settings):
    settings.ALLOWED_HOSTS = ["realtime.example.com"]
    assert client.get("/healthz", HTTP_HOST="10.0.3.17:8765").status_code == 200
    assert client.get("/admin/login/", HTTP_HOST="10.0.3.17:8765").status_code == 400
