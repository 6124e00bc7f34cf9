"""The fleet, end to end: daphne processes sharing moto's server and a real Redis.

Leases are short here (a 0.5 s heartbeat, a 2.5 s lease) so that deaths are found in
seconds; the defaults' figures are measured by `python -m bench.fleet`. Each test states what
the registry must say during the failure and after it, as docs/registry.md's table does.
"""

import json
import os
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed

from bench.tcp_proxy import TcpProxy
from realtime.core.leases import lease_key
from tests.api_contract import TOKEN, Api
from tests.e2e.conftest import closed_with, item_ids, receive, wait_until
from tests.processes import manage

HEARTBEAT, LEASE = 0.5, 2.5
FLEET = {
    "INSTANCE_HEARTBEAT_SECONDS": str(HEARTBEAT),
    "INSTANCE_LEASE_SECONDS": str(LEASE),
    "DELIVERY_TIMEOUT_SECONDS": "1",
    "API_TOKENS": TOKEN,
}
# Found dead within a lease and a heartbeat of the last renewal; reads follow at the next
# heartbeat of the reader. Generous, for a loaded machine.
DEATH_FOUND_WITHIN = LEASE + 4 * HEARTBEAT + 3


@pytest.fixture
def fleet(start_server, redis_url):
    """Start instances that share the test's table and Redis."""

    def start(**env: str):
        return start_server(**{"REDIS_URL": redis_url, **FLEET, **env})

    return start


def listed(api: Api, tenant: str = "acme") -> set[str]:
    status, _, body = api("GET", f"/api/connections?tenant={tenant}&limit=1000")
    assert status == 200, body
    return {c["connection_id"] for c in body["connections"]}


def instances(api: Api) -> dict[str, dict]:
    status, _, body = api("GET", "/api/instances")
    assert status == 200, body
    return {i["instance_id"]: i for i in body["instances"]}


def instance_of(server) -> str:
    """The instance id a server holds its lease under (from its start-up log)."""
    line = next(line for line in server.process.lines if "instance.joined" in line)
    return line.split("instance_id=")[1].split()[0]


def still_open(ws, connection_id: str) -> bool:
    ws.send('{"type": "info"}')
    return receive(ws)["connection_id"] == connection_id


def test_a_killed_instance_leaves_every_answer_then_the_table(fleet, registry):
    doomed, survivor = fleet(), fleet()
    api = Api(survivor.port)
    lost = [doomed.open_client() for _ in range(5)]
    kept = [survivor.open_client() for _ in range(2)]
    lost_ids = {cid for _, cid in lost}
    kept_ids = {cid for _, cid in kept}
    doomed_id = instance_of(doomed)
    assert listed(api) == lost_ids | kept_ids
    # As stored at its last renewal, a heartbeat at most after the last connection.
    assert wait_until(lambda: instances(api)[doomed_id]["connections"] == 5, timeout=5)

    doomed.process.kill()  # SIGKILL: nothing is cleaned up
    killed = time.monotonic()
    assert wait_until(lambda: listed(api) == kept_ids, timeout=DEATH_FOUND_WITHIN)
    left_answers = time.monotonic() - killed
    # Every other answer agrees at once: gets, counts, the instance's own listing.
    status, _, body = api("GET", "/api/stats?tenant=acme")
    assert (status, body["total"]) == (200, 2)
    for connection_id in lost_ids:
        status, _, body = api("GET", f"/api/connections/{connection_id}")
        assert (status, body["code"]) == (404, "connection_not_found")
    # ...and the table follows: the survivor deletes the items, then the lease.
    assert wait_until(lambda: not item_ids(registry) & lost_ids, timeout=10)
    assert wait_until(lambda: doomed_id not in instances(api), timeout=10)
    assert item_ids(registry) == kept_ids
    assert "instance.reaped" in survivor.process.output
    print(f"connections left every answer {left_answers:.1f}s after kill -9")
    # The survivor's own connections never left.
    for ws, connection_id in kept:
        assert still_open(ws, connection_id)


def test_a_tenant_at_its_quota_is_admitted_again_after_its_holder_crashes(fleet):
    doomed = fleet(WS_TENANT_MAX_CONNECTIONS="3")
    survivor = fleet(WS_TENANT_MAX_CONNECTIONS="3")
    held = [doomed.open_client() for _ in range(3)]
    refused = survivor.connect()
    assert receive(refused)["code"] == "over_quota"
    assert closed_with(refused) == 4429

    doomed.process.kill()
    killed = time.monotonic()

    def admitted():
        ws = survivor.connect()
        message = receive(ws)
        if message["type"] == "connected":
            return ws
        ws.close()
        return None

    ws = wait_until(admitted, timeout=DEATH_FOUND_WITHIN + 5, interval=0.25)
    assert ws, "the dead holder's slots were never freed"
    print(f"admitted {time.monotonic() - killed:.1f}s after kill -9")
    ws.close()
    del held


def test_a_stall_shorter_than_the_lease_loses_nothing(fleet, registry):
    stalled = fleet(INSTANCE_LEASE_SECONDS="5")
    other = fleet(INSTANCE_LEASE_SECONDS="5")
    api = Api(other.port)
    clients = [stalled.open_client() for _ in range(3)]
    ids = {cid for _, cid in clients}
    target = clients[0][1]

    stalled.process.signal(signal.SIGSTOP)
    try:
        # A send aimed at the stalled holder: not acknowledged, not death.
        status, _, body = api("POST", f"/api/connections/{target}/messages", {"data": "hi"})
        assert (status, body["code"]) == (504, "holder_not_responding")
        assert listed(api) == ids  # while stalled, still believed
        time.sleep(2)  # 3 s in all, with the send's wait: under a lease minus a heartbeat
    finally:
        stalled.process.signal(signal.SIGCONT)

    # Afterwards: every open socket has its item, and no item lacks its socket.
    time.sleep(LEASE)
    assert item_ids(registry) == ids
    for ws, connection_id in clients:
        message = receive(ws) if connection_id == target else None
        if message is not None:
            assert message == {"type": "message", "data": "hi"}  # carried out on waking
        assert still_open(ws, connection_id)
    assert listed(api) == ids
    assert "instance.lease_lost" not in stalled.process.output


def test_a_stall_longer_than_the_lease_comes_back_fenced(fleet, registry):
    stalled, survivor = fleet(), fleet()
    api = Api(survivor.port)
    clients = [stalled.open_client() for _ in range(3)]
    ids = {cid for _, cid in clients}
    old_id = instance_of(stalled)

    stalled.process.signal(signal.SIGSTOP)
    try:
        assert wait_until(lambda: not listed(api) & ids, timeout=DEATH_FOUND_WITHIN)
        assert wait_until(lambda: not item_ids(registry) & ids, timeout=10)
    finally:
        stalled.process.signal(signal.SIGCONT)

    # Its next renewal fails its condition: every socket is closed with 1013.
    for ws, _ in clients:
        assert receive(ws)["code"] == "registration_lost"
        assert closed_with(ws) == 1013
    assert "instance.lease_lost" in stalled.process.output
    # It rejoins under a new id and serves again, exactly.
    ws, connection_id = stalled.open_client()
    assert wait_until(lambda: old_id not in instances(api), timeout=10)  # reaped, then deleted
    rejoined = {i for i in instances(api) if i != instance_of(survivor)}
    assert len(rejoined) == 1
    assert registry.get(connection_id).instance_id in rejoined
    assert item_ids(registry) == {connection_id}
    ws.close()


def test_one_instance_cut_off_from_dynamodb_is_reaped_then_fenced(fleet, registry, moto):
    proxy = TcpProxy(moto.port)
    try:
        cut_off = fleet(DYNAMODB_ENDPOINT_URL=proxy.url)
        survivor = fleet()
        api = Api(survivor.port)
        clients = [cut_off.open_client() for _ in range(3)]
        ids = {cid for _, cid in clients}

        proxy.cut()
        # Its sockets keep working; it can register nobody new.
        for ws, connection_id in clients:
            assert still_open(ws, connection_id)
        refused = cut_off.connect()
        assert receive(refused)["code"] == "registry_unavailable"
        assert closed_with(refused) == 1013
        # The others find it dead and reap it.
        assert wait_until(lambda: not listed(api) & ids, timeout=DEATH_FOUND_WITHIN + 5)
        assert wait_until(lambda: not item_ids(registry) & ids, timeout=10)
        for ws, connection_id in clients:
            assert still_open(ws, connection_id)

        proxy.restore()
        for ws, _ in clients:
            assert receive(ws)["code"] == "registration_lost"
            assert closed_with(ws) == 1013
        ws, connection_id = cut_off.open_client()
        assert item_ids(registry) == {connection_id}
        ws.close()
    finally:
        proxy.stop()


def test_a_fleet_wide_outage_closes_nobody_and_reaps_nobody(fleet, registry, moto):
    proxy = TcpProxy(moto.port)
    try:
        first = fleet(DYNAMODB_ENDPOINT_URL=proxy.url)
        second = fleet(DYNAMODB_ENDPOINT_URL=proxy.url)
        clients = [first.open_client() for _ in range(3)] + [second.open_client() for _ in range(3)]
        ids = {cid for _, cid in clients}
        members = {instance_of(first), instance_of(second)}

        proxy.cut()
        time.sleep(3 * LEASE)  # nobody can renew, nobody can read
        for ws, connection_id in clients:
            assert still_open(ws, connection_id)
        proxy.restore()

        api = Api(second.port)
        time.sleep(2 * LEASE)  # every instance has renewed and judged the others again
        for ws, connection_id in clients:
            assert still_open(ws, connection_id)
        assert listed(api) == ids
        assert item_ids(registry) == ids
        assert set(instances(api)) == members
        assert all(i["state"] == "live" for i in instances(api).values())
        for server in (first, second):
            assert "instance.lease_lost" not in server.process.output
            assert "instance.taken_over" not in server.process.output
    finally:
        proxy.stop()


def test_a_clean_shutdown_leaves_neither_items_nor_a_lease(fleet, registry):
    server = fleet()
    clients = [server.open_client() for _ in range(3)]
    instance_id = instance_of(server)
    assert registry.lease(instance_id) is not None
    server.process.signal(signal.SIGTERM)
    for ws, _ in clients:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert server.process.stop() == 0
    assert item_ids(registry) == set()
    assert registry.lease(instance_id) is None
    assert (
        registry.client.get_item(
            TableName=registry.table_name, Key={"connection_id": {"S": lease_key(instance_id)}}
        ).get("Item")
        is None
    )


def test_list_instances_and_purge_refusing_a_live_instance(fleet, moto_url, table_name):
    server = fleet()
    ws, connection_id = server.open_client()
    instance_id = instance_of(server)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "ENV_FILE": os.devnull,
        "SECRET_KEY": "tests-secret-key-0123456789abcdefghijkl",
        "DYNAMODB_ENDPOINT_URL": moto_url,
        "DYNAMODB_TABLE_NAME": table_name,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }

    listing = manage(env, "list_instances", "--json")
    assert listing.returncode == 0, listing.stderr
    (row,) = [json.loads(line) for line in listing.stdout.splitlines()]
    assert (row["instance_id"], row["state"], row["connections"]) == (instance_id, "live", 1)

    refused = manage(env, "purge_connections", "--instance", instance_id)
    assert refused.returncode == 1
    assert "is live" in refused.stderr and "--force" in refused.stderr
    assert still_open(ws, connection_id)
    ws.close()
