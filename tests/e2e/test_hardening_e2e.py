"""Who may connect, limits and failures, through real daphne processes and real clients."""

import json
import re
import shutil
import signal
import threading
import time

import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.api_contract import TOKEN, Api
from tests.e2e.conftest import item_ids, wait_until
from tests.processes import ServerProcess, base_env, free_port, manage

SECRET = "e2e-token-secret-0123456789abcdefghijklmnop"


def refusal(server, query=None, **connect_kwargs) -> tuple[str, int]:
    """(error code, close code) of a refused handshake."""
    with connect(server.url(query), open_timeout=10, **connect_kwargs) as ws:
        error = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    return error["code"], closed.value.rcvd.code


def issue_token(tenant="acme", deployment_id="prod-1", connection_type="client", ttl="60"):
    result = manage(
        base_env(DEBUG="true", WS_TOKEN_SECRET=SECRET),
        "issue_token",
        f"--tenant={tenant}",
        f"--deployment-id={deployment_id}",
        f"--connection-type={connection_type}",
        f"--ttl={ttl}",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def query(token=None, tenant="acme") -> dict:
    values = {"tenant": tenant, "deployment_id": "prod-1", "connection_type": "client"}
    if token is not None:
        values["token"] = token
    return values


def test_signed_tokens_admit_only_what_they_bind(start_server):
    server = start_server(WS_AUTH="signed", WS_TOKEN_SECRET=SECRET)
    token = issue_token()
    assert refusal(server, query()) == ("token_missing", 4401)
    assert refusal(server, query(token + "x")) == ("token_invalid", 4401)
    assert refusal(server, query(token, tenant="other")) == ("token_mismatch", 4403)
    assert item_ids(server.registry) == set()

    ws, connection_id = server.open_client(query(token))
    assert item_ids(server.registry) == {connection_id}
    ws.close()


def test_an_expired_token_is_refused(start_server):
    server = start_server(WS_AUTH="signed", WS_TOKEN_SECRET=SECRET)
    token = issue_token(ttl="1")
    time.sleep(7)  # past the expiry and the 5 s leeway for clock skew
    assert refusal(server, query(token)) == ("token_expired", 4401)
    assert item_ids(server.registry) == set()


def test_origins_outside_the_list_are_refused_with_4403(start_server):
    server = start_server(WS_ALLOWED_ORIGINS="https://app.example.com")
    assert refusal(server, origin="https://evil.example.net") == ("origin_not_allowed", 4403)
    assert refusal(server) == ("origin_not_allowed", 4403)  # no Origin header at all
    assert item_ids(server.registry) == set()
    with connect(server.url(), origin="https://app.example.com", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "connected"


def test_the_tenant_quota_holds_across_two_instances_racing(start_server):
    limit = 5
    first = start_server(WS_TENANT_MAX_CONNECTIONS=str(limit))
    second = start_server(WS_TENANT_MAX_CONNECTIONS=str(limit))
    outcomes: list[tuple[str, object]] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def attempt(server):
        start.wait()
        ws = connect(server.url(), open_timeout=10, legacy=True)
        first_frame = json.loads(ws.recv(timeout=10))
        with lock:
            outcomes.append((first_frame.get("code", first_frame["type"]), ws))

    threads = [
        threading.Thread(target=attempt, args=(first if i % 2 else second,)) for i in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    accepted = [ws for kind, ws in outcomes if kind == "connected"]
    refused = [ws for kind, ws in outcomes if kind == "over_quota"]
    assert (len(accepted), len(refused)) == (limit, 12 - limit)
    for ws in refused:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 4429
    connection_items = {i for i in item_ids(first.registry) if not i.startswith("quota#")}
    assert len(connection_items) == limit

    # A freed slot is taken again, on either instance.
    accepted[0].close()
    accepted[1].close()
    assert wait_until(
        lambda: (
            len({i for i in item_ids(first.registry) if not i.startswith("quota#")}) == limit - 2
        )
    )
    more = [first.open_client()[0], second.open_client()[0]]
    assert refusal(first)[0] == "over_quota"
    for ws in accepted[2:] + more:
        ws.close()


def test_idle_connections_are_closed_with_4408_and_deregistered(start_server):
    server = start_server(WS_IDLE_TIMEOUT_SECONDS="2")
    started = time.monotonic()  # before the server starts counting, which is before `connected`
    ws, _ = server.open_client()
    error = json.loads(ws.recv(timeout=10))
    assert error["code"] == "idle_timeout"
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4408
    assert 2 <= time.monotonic() - started < 5  # the sweep runs every second here
    assert wait_until(lambda: item_ids(server.registry) == set())


@pytest.fixture
def own_redis():
    """A Redis server of the test's own, to stop and start again on the same port."""
    port = free_port()

    def start() -> ServerProcess:
        return ServerProcess(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            env=base_env(),
            ready=re.compile(r"Ready to accept connections"),
            name="redis-server",
        ).start()

    servers = [start()]
    yield port, servers, start
    for server in servers:
        server.kill()


def test_redis_outage_keeps_sockets_working_and_fails_deliveries_visibly(start_server, own_redis):
    port, servers, start_redis = own_redis
    server = start_server(REDIS_URL=f"redis://127.0.0.1:{port}/0", API_TOKENS=TOKEN)
    api = Api(server.port)
    ws, connection_id = server.open_client()

    servers[0].kill()
    ws.send('{"type": "ping"}')
    assert json.loads(ws.recv(timeout=5))["type"] == "pong"
    status, _, body = api("POST", f"/api/connections/{connection_id}/messages", {"data": 1})
    assert (status, body["code"]) == (503, "delivery_unavailable")
    assert item_ids(server.registry) == {connection_id}

    servers.append(start_redis())  # back, empty, on the same port
    redis.Redis(port=port).ping()

    def delivered() -> bool:
        status, _, _ = api("POST", f"/api/connections/{connection_id}/messages", {"data": 2})
        return status == 200

    # The consumer's receive loop reconnects with backoff (at most 30 s).
    assert wait_until(delivered, timeout=40, interval=0.5)
    while json.loads(ws.recv(timeout=5)) != {"type": "message", "data": 2}:
        pass
    ws.close()


def test_sigterm_drains_within_the_bound(start_server):
    server = start_server(DRAIN_SECONDS="10")
    clients = [server.open_client() for _ in range(50)]
    started = time.monotonic()
    server.process.signal(signal.SIGTERM)
    assert server.process.process.wait(15) == 0
    assert time.monotonic() - started < 10
    assert item_ids(server.registry) == set()
    assert server.process.wait_for_output(r"server\.drained closed=50 left_to_ttl=0")
    for ws, _ in clients:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1001
