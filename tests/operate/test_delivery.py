"""Delivery services in one process: in-memory channel layer, mocked DynamoDB, real consumers.

tests/e2e/test_delivery_e2e.py proves the same across two daphne processes and Redis.
"""

import asyncio
import dataclasses

import pytest
from channels.testing import WebsocketCommunicator

from realtime.core.connection import Connection
from realtime.core.handshake import ConnectionRequest
from realtime.operate import delivery
from realtime.server.consumer import ConnectionConsumer
from realtime.server.runtime import runtime

PATH = "/?tenant={tenant}&deployment_id={deployment}&connection_type={kind}"


@pytest.fixture
def registry(aws, settings):
    settings.DELIVERY_TIMEOUT_SECONDS = 0.3
    registry = runtime().registry
    registry.create_table()
    return registry


def run(coroutine):
    return asyncio.run(coroutine)


async def open_client(tenant="acme", deployment="prod-1", kind="client"):
    client = WebsocketCommunicator(
        ConnectionConsumer.as_asgi(), PATH.format(tenant=tenant, deployment=deployment, kind=kind)
    )
    connected, _ = await client.connect()
    assert connected
    message = await client.receive_json_from()
    return client, message["connection_id"]


def orphan(registry, **changes) -> Connection:
    """An item whose consumer does not exist, as a crashed server leaves behind."""
    record = Connection.open(
        ConnectionRequest("acme", "prod-1", "client"),
        now=registry.clock(),
        ttl_seconds=3600,
        instance_id=runtime().instance_id,
        channel_name="specific.nobody!listening",
        client_addr="127.0.0.1:1",
    )
    record = dataclasses.replace(record, **changes)
    registry.register(record)
    return record


def test_send_delivers_a_message_frame(registry):
    async def scenario():
        client, connection_id = await open_client()
        record = await delivery.connection_send(connection_id, {"hello": [1, 2]})
        assert record.connection_id == connection_id
        assert await client.receive_json_from() == {"type": "message", "data": {"hello": [1, 2]}}
        await client.disconnect()

    run(scenario())


def test_send_to_unknown_connection_is_not_found(registry):
    with pytest.raises(delivery.ConnectionNotFound):
        run(delivery.connection_send("no-such-id", {}))


def test_send_to_an_orphaned_item_is_gone_and_removes_it(registry):
    record = orphan(registry)
    with pytest.raises(delivery.ConnectionGone):
        run(delivery.connection_send(record.connection_id, {}))
    assert registry.get(record.connection_id) is None


def test_in_memory_layer_cannot_reach_another_instance(registry):
    record = orphan(registry, instance_id="another-host-1-abcd")
    with pytest.raises(delivery.DeliveryUnavailable, match="REDIS_URL"):
        run(delivery.connection_send(record.connection_id, {}))
    assert registry.get(record.connection_id) is not None  # not ours to judge


def test_disconnect_closes_with_the_code_and_deregisters(registry):
    async def scenario():
        client, connection_id = await open_client()
        await delivery.connection_disconnect(connection_id, code=4321)
        output = await client.receive_output(timeout=2)
        assert output == {"type": "websocket.close", "code": 4321}
        return connection_id

    connection_id = run(scenario())
    assert registry.get(connection_id) is None


def test_broadcast_reaches_exactly_the_selected_connections(registry):
    async def scenario():
        clients = {
            name: await open_client(*name.split("/"))
            for name in (
                "acme/prod-1/client",
                "acme/prod-1/worker",
                "acme/prod-2/client",
                "beta/prod-1/client",
            )
        }
        targeted = await delivery.connections_broadcast(
            tenant="acme", deployment_id="prod-1", data={"n": 1}
        )
        assert targeted == 2
        for name in ("acme/prod-1/client", "acme/prod-1/worker"):
            assert await clients[name][0].receive_json_from() == {
                "type": "message",
                "data": {"n": 1},
            }
        for name in ("acme/prod-2/client", "beta/prod-1/client"):
            assert await clients[name][0].receive_nothing(timeout=0.2)
        assert await delivery.connections_broadcast(tenant="acme", data={"n": 2}) == 3
        assert await delivery.connections_broadcast(tenant="nobody", data={}) == 0
        for client, _ in clients.values():
            await client.disconnect()

    run(scenario())


def test_a_connection_its_inbox_does_not_hold_is_gone_at_once(registry, settings):

    settings.DELIVERY_TIMEOUT_SECONDS = 30  # the answer must not wait for this

    async def scenario():
        client, _ = await open_client()  # starts this process's inbox
        record = orphan(registry, channel_name=await runtime().inbox.address())
        started = asyncio.get_running_loop().time()
        with pytest.raises(delivery.ConnectionGone, match="no longer open"):
            await delivery.connection_send(record.connection_id, {})
        assert asyncio.get_running_loop().time() - started < 1
        await client.disconnect()
        return record

    record = run(scenario())
    assert registry.get(record.connection_id) is None


def test_a_broadcast_is_one_channel_message_per_inbox(registry, monkeypatch):
    from channels.layers import get_channel_layer

    sent = []

    async def scenario():
        clients = [await open_client() for _ in range(5)]
        layer = get_channel_layer()
        real_send = layer.send

        async def counting_send(channel, message):
            sent.append((channel, message["type"], len(message.get("connection_ids", []))))
            await real_send(channel, message)

        monkeypatch.setattr(layer, "send", counting_send)
        assert await delivery.connections_broadcast(tenant="acme", data="hi") == 5
        for client, _ in clients:
            assert await client.receive_json_from() == {"type": "message", "data": "hi"}
            await client.disconnect()

    run(scenario())
    assert [(kind, count) for _, kind, count in sent] == [("connection.broadcast", 5)]
