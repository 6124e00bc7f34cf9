"""/healthz, /readyz and /metrics of a real daphne on a real Redis channel layer, over HTTP."""

import json
import signal
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Server, registry_at, wait_until
from tests.processes import daphne_server, server_env

METRICS_TOKEN = "e2e-metrics-token-0123456789"
READY = {"status": "ready", "checks": {"dynamodb": "ok", "channel_layer": "ok"}}


def http_get(port: int, path: str, **headers: str) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET; error statuses are answers, not exceptions."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get_json(port: int, path: str) -> tuple[int, dict]:
    status, _, raw = http_get(port, path)
    return status, json.loads(raw)


def registry_calls(text: str) -> dict[str, float]:
    """realtime_registry_call_seconds_count by operation, from an exposition."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {
        sample.labels["operation"]: sample.value
        for sample in families["realtime_registry_call_seconds"].samples
        if sample.name == "realtime_registry_call_seconds_count"
    }


def test_health_readiness_and_metrics_over_http(start_server, redis_url):
    server = start_server(REDIS_URL=redis_url, METRICS_TOKEN=METRICS_TOKEN)

    assert get_json(server.port, "/healthz") == (200, {"status": "ok"})
    assert get_json(server.port, "/readyz") == (200, READY)

    ws, connection_id = server.open_client()
    status, headers, _ = http_get(server.port, "/metrics")
    assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="metrics"')
    status, headers, raw = http_get(
        server.port, "/metrics", Authorization=f"Bearer {METRICS_TOKEN}"
    )
    ws.close()

    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    calls = registry_calls(raw.decode())
    assert calls["PutItem"] == 2  # the instance's lease, then the client's registration
    assert calls["Query"] >= 1  # the fleet, read at every heartbeat
    assert calls["DescribeTable"] >= 1  # table setup at start, and /readyz
    assert connection_id not in raw.decode()
    assert METRICS_TOKEN not in server.process.output


def test_readyz_follows_a_frozen_dynamodb_and_its_recovery(own_moto, table_name, redis_url):
    url = f"http://127.0.0.1:{own_moto.port}"
    process = daphne_server(server_env(url, table_name, REDIS_URL=redis_url)).start()
    server = Server(process, registry_at(url, table_name))
    try:
        assert get_json(server.port, "/readyz") == (200, READY)

        own_moto.signal(signal.SIGSTOP)  # accepts TCP, never answers
        try:
            # The cached "ok" lasts two seconds; then DescribeTable times out.
            frozen = wait_until(lambda: get_json(server.port, "/readyz")[0] == 503, timeout=20)
            assert frozen
            assert get_json(server.port, "/readyz") == (
                503,
                {"status": "not_ready", "checks": {"dynamodb": "timeout", "channel_layer": "ok"}},
            )
            assert get_json(server.port, "/healthz") == (200, {"status": "ok"})
        finally:
            own_moto.signal(signal.SIGCONT)

        assert wait_until(lambda: get_json(server.port, "/readyz") == (200, READY), timeout=20)
        # The log line is written before the answer, and read from the pipe a moment later.
        assert wait_until(lambda: "health.ready" in process.output, timeout=5)
        output = process.output
        assert output.count("health.not_ready dynamodb=timeout channel_layer=ok") == 1
        assert output.count("health.ready") == 1
        assert "Service Unavailable: /readyz" not in output
    finally:
        process.stop()
