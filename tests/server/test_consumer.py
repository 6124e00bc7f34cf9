"""ConnectionConsumer in-process: WebsocketCommunicator against moto's mocked DynamoDB.

Fast checks of the shell's ordering and cleanup paths; tests/e2e proves the same through a
real daphne process and real sockets.
"""

import asyncio
import threading

import pytest
from channels.testing import WebsocketCommunicator

from realtime.core.leases import LEASE_KEY_PREFIX
from realtime.registry import RegistryUnavailable
from realtime.server.consumer import ConnectionConsumer
from realtime.server.runtime import runtime

VALID = "/?tenant=acme&deployment_id=prod-1&connection_type=client"


@pytest.fixture
def registry(aws):
    registry = runtime().registry
    registry.create_table()
    return registry


def run(coroutine):
    return asyncio.run(coroutine)


def communicator(path: str = VALID) -> WebsocketCommunicator:
    return WebsocketCommunicator(ConnectionConsumer.as_asgi(), path)


def stored_ids(registry) -> set[str]:
    """The connection items in the table (not this instance's lease)."""
    items = registry.client.scan(TableName=registry.table_name)["Items"]
    ids = {item["connection_id"]["S"] for item in items}
    return {cid for cid in ids if not cid.startswith(LEASE_KEY_PREFIX)}


async def open_connection(client: WebsocketCommunicator) -> dict:
    connected, _ = await client.connect()
    assert connected
    message = await client.receive_json_from()
    assert message["type"] == "connected"
    return message


async def closed_code(client: WebsocketCommunicator) -> int:
    output = await client.receive_output(timeout=2)
    assert output["type"] == "websocket.close", output
    return output["code"]


def test_registers_before_connected_and_deregisters_on_close(registry):
    async def scenario():
        client = communicator()
        message = await open_connection(client)
        assert stored_ids(registry) == {message["connection_id"]}
        await client.send_json_to({"type": "ping"})
        assert (await client.receive_json_from())["type"] == "pong"
        await client.send_json_to({"type": "info"})
        info = await client.receive_json_from()
        assert info["connection_id"] == message["connection_id"]
        await client.send_json_to({"type": "other", "n": 1})
        assert await client.receive_json_from() == {
            "type": "echo",
            "data": {"type": "other", "n": 1},
        }
        await client.disconnect()
        return message["connection_id"]

    run(scenario())
    assert stored_ids(registry) == set()
    assert len(runtime().keeper) == 0


def test_rejected_handshake_sends_error_then_closes_and_writes_nothing(registry):
    async def scenario():
        client = communicator("/?tenant=acme&deployment_id=prod-1")
        connected, _ = await client.connect()
        assert connected  # accepted, so that the client can read the reason
        error = await client.receive_json_from()
        assert error["code"] == "missing_parameter"
        assert await closed_code(client) == 4400

    run(scenario())
    assert stored_ids(registry) == set()


def test_registry_failure_refuses_with_1013(registry, monkeypatch):
    def unavailable(connection):
        raise RegistryUnavailable("DynamoDB put_item failed: EndpointConnectionError")

    monkeypatch.setattr(registry, "register", unavailable)

    async def scenario():
        client = communicator()
        await client.connect()
        error = await client.receive_json_from()
        assert error["code"] == "registry_unavailable"
        assert await closed_code(client) == 1013

    run(scenario())
    assert stored_ids(registry) == set()
    assert len(runtime().keeper) == 0


def test_frames_after_a_close_decision_are_ignored(registry, settings):
    settings.WS_MAX_MESSAGE_BYTES = 10

    async def scenario():
        client = communicator()
        await open_connection(client)
        await client.send_to(text_data='{"type": "a long message"}')
        assert (await client.receive_json_from())["code"] == "message_too_big"
        assert await closed_code(client) == 1009
        await client.disconnect()

    run(scenario())
    assert stored_ids(registry) == set()


def test_cancellation_at_shutdown_closes_with_1001_and_deregisters(registry):
    async def scenario():
        client = communicator()
        await open_connection(client)
        client.future.cancel()  # what daphne does to every application on SIGTERM
        assert await closed_code(client) == 1001
        with pytest.raises(asyncio.CancelledError):
            await client.future

    run(scenario())
    assert stored_ids(registry) == set()


def test_cancellation_during_registration_never_leaves_the_item_behind(registry, monkeypatch):
    """The delete waits for the in-flight put: it must not overtake it."""
    put_started = threading.Event()
    release_put = threading.Event()
    original_register = registry.register

    def slow_register(connection):
        put_started.set()
        release_put.wait(5)
        original_register(connection)

    monkeypatch.setattr(registry, "register", slow_register)

    async def scenario():
        client = communicator()
        await client.connect()
        await asyncio.to_thread(put_started.wait, 5)
        client.future.cancel()
        await asyncio.sleep(0.05)
        release_put.set()  # the put lands after the cancellation
        with pytest.raises(asyncio.CancelledError):
            await client.future

    run(scenario())
    assert stored_ids(registry) == set()


def test_vanished_item_closes_the_socket_with_1013(registry, clock, monkeypatch):
    keeper = runtime().keeper
    monkeypatch.setattr(keeper, "clock", clock)
    monkeypatch.setattr(registry, "clock", clock)

    async def scenario():
        client = communicator()
        message = await open_connection(client)
        registry.deregister(message["connection_id"])  # e.g. an operator purged it
        clock.advance(10 * 3600)  # every held connection is now due
        await keeper.sweep()
        error = await client.receive_json_from()
        assert error["code"] == "registration_lost"
        assert await closed_code(client) == 1013
        await client.disconnect()

    run(scenario())
    assert stored_ids(registry) == set()
    assert len(keeper) == 0


# --- limits, quota, drain (issue: production hardening) --------------------------------------


def test_messages_over_the_rate_get_errors_then_sustained_abuse_closes_with_1008(
    registry, settings
):
    settings.WS_RATE_PER_SECOND = 1
    settings.WS_RATE_BURST = 2
    settings.WS_RATE_ABUSE = 3

    async def scenario():
        client = communicator()
        await open_connection(client)
        for _ in range(2):
            await client.send_json_to({"type": "ping"})
            assert (await client.receive_json_from())["type"] == "pong"
        for _ in range(3):
            await client.send_json_to({"type": "ping"})
            error = await client.receive_json_from()
            assert error["code"] == "rate_limited" and "dropped" in error["detail"]
        await client.send_json_to({"type": "ping"})
        assert (await client.receive_json_from())["code"] == "rate_limited"
        assert await closed_code(client) == 1008
        await client.disconnect()

    run(scenario())
    assert stored_ids(registry) == set()


def test_the_tenant_quota_refuses_with_4429_and_registers_nothing(registry, settings):
    settings.WS_TENANT_MAX_CONNECTIONS = 1
    quota_registry = runtime().registry  # rebuilt with the limit
    quota_registry.create_table()

    async def scenario():
        first = communicator()
        message = await open_connection(first)
        second = communicator()
        await second.connect()
        error = await second.receive_json_from()
        assert error["code"] == "over_quota"
        assert await closed_code(second) == 4429
        other_tenant = communicator("/?tenant=beta&deployment_id=prod-1&connection_type=client")
        await open_connection(other_tenant)
        await other_tenant.disconnect()
        await first.disconnect()
        return message["connection_id"]

    run(scenario())
    assert {i for i in stored_ids(quota_registry) if not i.startswith("quota#")} == set()


def test_idle_and_old_connections_are_closed_by_the_sweeper(registry, settings, monkeypatch):

    settings.WS_IDLE_TIMEOUT_SECONDS = 60
    sweeper = runtime().sweeper
    now = [1000.0]
    monkeypatch.setattr(sweeper, "clock", lambda: now[0])

    async def scenario():
        client = communicator()
        await open_connection(client)
        consumer_view = runtime().keeper.holders()[0]
        consumer_view.last_seen = now[0] - 61
        assert await sweeper.sweep() == 1
        error = await client.receive_json_from()
        assert error["code"] == "idle_timeout"
        assert await closed_code(client) == 4408
        await client.disconnect()

    run(scenario())
    assert stored_ids(registry) == set()


def test_a_draining_server_refuses_new_connections(registry):
    runtime().start_draining()

    async def scenario():
        client = communicator()
        await client.connect()
        assert (await client.receive_json_from())["code"] == "draining"
        assert await closed_code(client) == 1013

    run(scenario())
    assert stored_ids(registry) == set()


def test_drain_closes_every_client_with_1001_and_deregisters_in_batches(registry):
    from realtime.server.shutdown import drain

    async def scenario():
        clients = [communicator() for _ in range(30)]
        for client in clients:
            await open_connection(client)
        assert len(stored_ids(registry)) == 30
        await drain()
        assert runtime().is_draining()
        for client in clients:
            assert await closed_code(client) == 1001
            await client.disconnect()

    run(scenario())
    assert stored_ids(registry) == set()
    assert len(runtime().keeper) == 0
