"""TtlKeeper with a fake clock and a fake registry that counts its writes."""

import asyncio

import pytest
from django.conf import settings

from realtime.core.connection import Connection
from realtime.registry import RegistryUnavailable
from realtime.server.keeper import TtlKeeper
from tests.conftest import NOW

TTL = 3600
INSTANCE = "this-instance"


def record(connection_id: str, expires_at: int) -> Connection:
    return Connection(
        connection_id=connection_id,
        tenant="acme",
        deployment_id="prod",
        connection_type="client",
        connected_at="2027-01-15T08:00:00.000Z",
        expires_at=expires_at,
        instance_id="host-a",
        channel_name=f"specific.{connection_id}",
        client_addr="203.0.113.7:50123",
    )


class FakeRegistry:
    """Counts refresh writes; items in `items` exist. `gate`, when set, holds every refresh."""

    def __init__(self):
        self.items: set[str] = set()
        self.refreshes: list[tuple[str, int]] = []
        self.failing = False
        self.gate: asyncio.Event | None = None

    async def arefresh(self, connection_id: str, expires_at: int) -> bool:
        self.refreshes.append((connection_id, expires_at))
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise RegistryUnavailable("DynamoDB update_item failed: EndpointConnectionError")
        return connection_id in self.items


class FakeHolder:
    def __init__(self, record: Connection):
        self.record = record
        self.lost = 0

    async def registration_lost(self) -> None:
        self.lost += 1


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def keeper(registry, clock) -> TtlKeeper:
    return TtlKeeper(
        registry=registry, ttl_seconds=TTL, refresh_seconds=300, instance=INSTANCE, clock=clock
    )


def run(coroutine_function):
    """Run a test scenario on a fresh event loop (pytest-asyncio is not used here)."""
    return asyncio.run(coroutine_function())


async def settle() -> None:
    """Let started refresh tasks and their done-callbacks run."""
    for _ in range(5):
        await asyncio.sleep(0)


def held(keeper, registry, connection_id: str, expires_at: int) -> FakeHolder:
    registry.items.add(connection_id)
    holder = FakeHolder(record(connection_id, expires_at))
    keeper.track(holder)
    return holder


def test_is_due_at_and_below_half_the_ttl(keeper):
    assert keeper.is_due(record("c", NOW + TTL // 2 + 1), NOW) is False
    assert keeper.is_due(record("c", NOW + TTL // 2), NOW) is True
    assert keeper.is_due(record("c", NOW + TTL // 2 - 1), NOW) is True
    assert keeper.is_due(record("c", NOW - 10), NOW) is True


def test_touch_refreshes_nothing_that_is_not_due(keeper, registry):
    async def scenario():
        holder = held(keeper, registry, "c", NOW + TTL)
        keeper.touch(holder)
        await settle()
        return holder

    holder = run(scenario)
    assert registry.refreshes == []
    assert holder.record.expires_at == NOW + TTL


def test_touch_starts_at_most_one_refresh_while_one_is_in_flight(keeper, registry, clock):
    async def scenario():
        registry.gate = asyncio.Event()
        holder = held(keeper, registry, "c", NOW + TTL // 2)
        for _ in range(5):
            keeper.touch(holder)
            await settle()
        assert registry.refreshes == [("c", NOW + TTL)]
        assert await keeper.sweep() == 0  # the sweep skips it too
        registry.gate.set()
        await settle()
        keeper.touch(holder)  # no longer due
        await settle()
        return holder

    holder = run(scenario)
    assert registry.refreshes == [("c", NOW + TTL)]
    assert holder.record.expires_at == NOW + TTL


def test_sweep_refreshes_only_due_connections(keeper, registry, clock):
    async def scenario():
        due = held(keeper, registry, "due", NOW + 100)
        edge = held(keeper, registry, "edge", NOW + TTL // 2)
        fresh = held(keeper, registry, "fresh", NOW + TTL // 2 + 1)
        clock.advance(0.25)  # a fractional now: expires_at is whole seconds
        count = await keeper.sweep()
        return count, due, edge, fresh

    count, due, edge, fresh = run(scenario)
    assert count == 2
    assert sorted(registry.refreshes) == [("due", NOW + TTL), ("edge", NOW + TTL)]
    assert (due.record.expires_at, edge.record.expires_at) == (NOW + TTL, NOW + TTL)
    assert fresh.record.expires_at == NOW + TTL // 2 + 1
    assert sorted(keeper.held_ids()) == ["due", "edge", "fresh"]


def test_sweep_refreshes_in_chunks_of_the_concurrency(registry, clock):
    keeper = TtlKeeper(
        registry=registry,
        ttl_seconds=TTL,
        refresh_seconds=300,
        instance=INSTANCE,
        clock=clock,
        concurrency=3,
    )

    async def scenario():
        holders = [held(keeper, registry, f"c{i}", NOW) for i in range(7)]
        return await keeper.sweep(), holders

    count, holders = run(scenario)
    assert count == 7
    assert len(registry.refreshes) == 7
    assert {h.record.expires_at for h in holders} == {NOW + TTL}


@pytest.fixture
def one_at_a_time(registry, clock) -> TtlKeeper:
    """A keeper whose sweeps refresh one connection per chunk."""
    return TtlKeeper(
        registry=registry,
        ttl_seconds=TTL,
        refresh_seconds=300,
        instance=INSTANCE,
        clock=clock,
        concurrency=1,
    )


async def sweep_held_at_first_chunk(keeper, registry, ids):
    """Due connections `ids` and a sweep of them, held while it writes the first one."""
    registry.gate = asyncio.Event()
    holders = {cid: held(keeper, registry, cid, NOW + 10) for cid in ids}
    sweep = asyncio.create_task(keeper.sweep())
    await settle()
    return sweep, holders


def test_a_ping_during_a_sweep_does_not_refresh_a_connection_the_sweep_will_refresh(
    one_at_a_time, registry
):
    async def scenario():
        sweep, holders = await sweep_held_at_first_chunk(
            one_at_a_time, registry, ["first", "second"]
        )
        one_at_a_time.touch(holders["second"])  # a ping from a connection in a later chunk
        await settle()
        registry.gate.set()
        return await sweep, holders

    count, holders = run(scenario)
    assert count == 2
    assert sorted(registry.refreshes) == [("first", NOW + TTL), ("second", NOW + TTL)]
    assert {h.record.expires_at for h in holders.values()} == {NOW + TTL}


def test_a_connection_that_closes_while_an_earlier_chunk_is_written_is_skipped(
    one_at_a_time, registry
):
    async def scenario():
        sweep, holders = await sweep_held_at_first_chunk(
            one_at_a_time, registry, ["first", "closing", "last"]
        )
        # The consumer's release: the record goes, then the connection is untracked.
        holders["closing"].record = None
        one_at_a_time.untrack("closing")
        registry.gate.set()
        return await sweep, holders

    count, holders = run(scenario)
    assert count == 3
    assert sorted(registry.refreshes) == [("first", NOW + TTL), ("last", NOW + TTL)]
    assert holders["first"].record.expires_at == holders["last"].record.expires_at == NOW + TTL


def test_a_refresh_that_finds_the_item_gone_reports_the_loss_and_untracks(keeper, registry):
    async def scenario():
        holder = held(keeper, registry, "c", NOW + 10)
        other = held(keeper, registry, "other", NOW + TTL)
        registry.items.discard("c")  # purged by an operator, or expired during an outage
        keeper.touch(holder)
        await settle()
        return holder, other

    holder, other = run(scenario)
    assert holder.lost == 1
    assert keeper.held_ids() == ["other"]
    assert holder.record.expires_at == NOW + 10
    assert other.lost == 0


def test_a_sweep_that_finds_the_item_gone_reports_the_loss(keeper, registry):
    async def scenario():
        holder = held(keeper, registry, "c", NOW + 10)
        registry.items.clear()
        await keeper.sweep()
        await keeper.sweep()
        return holder

    holder = run(scenario)
    assert holder.lost == 1
    assert keeper.held_ids() == []
    assert len(registry.refreshes) == 1


def test_an_unavailable_registry_leaves_the_connection_tracked_and_due(keeper, registry, clock):
    async def scenario():
        holder = held(keeper, registry, "c", NOW + 10)
        registry.failing = True
        keeper.touch(holder)
        await settle()
        await keeper.sweep()
        return holder

    holder = run(scenario)
    assert len(registry.refreshes) == 2  # the ping, then the sweep, tried again
    assert keeper.held_ids() == ["c"]
    assert holder.lost == 0
    assert holder.record.expires_at == NOW + 10
    assert keeper.is_due(holder.record, clock()) is True


def test_a_connection_untracked_during_its_refresh_is_not_touched_afterwards(keeper, registry):
    async def scenario():
        registry.gate = asyncio.Event()
        gone = held(keeper, registry, "gone", NOW + 10)
        kept = held(keeper, registry, "kept", NOW + 10)
        keeper.touch(gone)
        keeper.touch(kept)
        await settle()
        keeper.untrack("gone")  # the socket closed while the write was in flight
        registry.items.discard("gone")  # and the consumer deregistered it
        registry.gate.set()
        await settle()
        return gone, kept

    gone, kept = run(scenario)
    assert gone.record.expires_at == NOW + 10
    assert gone.lost == 0
    assert kept.record.expires_at == NOW + TTL
    assert keeper.held_ids() == ["kept"]


def test_an_hour_of_pings_every_25_seconds_costs_at_most_two_writes(registry, clock):
    # At the defaults: an item written at connect with a full TTL.
    assert (settings.CONNECTION_TTL_SECONDS, settings.TTL_REFRESH_SECONDS) == (3600, 300)
    keeper = TtlKeeper(
        registry=registry,
        ttl_seconds=settings.CONNECTION_TTL_SECONDS,
        refresh_seconds=settings.TTL_REFRESH_SECONDS,
        instance=INSTANCE,
        clock=clock,
    )
    left = []

    async def scenario():
        holder = held(keeper, registry, "c", NOW + 3600)
        for second in range(0, 3600 + 1):
            clock.now = NOW + second
            if second % 25 == 0:
                keeper.touch(holder)  # the client's ping
                await settle()
            if second % 300 == 0:
                await keeper.sweep()  # what the keeper's loop does every TTL_REFRESH_SECONDS
            left.append(holder.record.expires_at - clock.now)
        return holder

    holder = run(scenario)
    writes = [expires_at - 3600 - NOW for _, expires_at in registry.refreshes]
    assert writes == [1800, 3600]  # seconds into the hour at which a write happened
    assert min(left) == 1801  # the item never came within half a TTL of expiring
    assert holder.lost == 0


def test_an_hour_without_pings_keeps_the_item_alive_through_sweeps(registry, clock):
    keeper = TtlKeeper(
        registry=registry, ttl_seconds=3600, refresh_seconds=300, instance=INSTANCE, clock=clock
    )

    async def scenario():
        holder = held(keeper, registry, "c", NOW + 3600)
        for second in range(0, 3 * 3600 + 1, 300):
            clock.now = NOW + second
            await keeper.sweep()
            assert holder.record.expires_at - clock.now >= 1800
        return holder

    run(scenario)
    assert len(registry.refreshes) == 6  # every half TTL, three hours


# --- reconciliation against a real (mocked) registry ----------------------------------------


@pytest.fixture
def real_keeper(dynamodb, clock) -> TtlKeeper:
    return TtlKeeper(
        registry=dynamodb,
        ttl_seconds=TTL,
        refresh_seconds=300,
        instance="host-a",
        clock=clock,
        reconcile_delay=0.01,
    )


def stored(registry) -> set[str]:
    items = registry.client.scan(TableName=registry.table_name)["Items"]
    return {item["connection_id"]["S"] for item in items}


def test_reconcile_deletes_only_this_instances_unclaimed_items(real_keeper, dynamodb):
    from tests.records import conn, seed

    seed(
        dynamodb,
        [
            conn("held", instance_id="host-a"),
            conn("registering", instance_id="host-a"),
            conn("leaked", instance_id="host-a"),  # e.g. a write that landed after a timeout
            conn("expired-leak", instance_id="host-a", expires_at=NOW - 5),
            conn("other-instance", instance_id="host-b"),
        ],
    )
    real_keeper._held["held"] = FakeHolder(record("held", NOW + TTL))
    real_keeper.claim("registering")
    assert run(real_keeper.reconcile) == 2
    assert stored(dynamodb) == {"held", "registering", "other-instance"}


def test_a_failed_write_schedules_a_reconcile_that_retries_until_it_succeeds(
    real_keeper, dynamodb, monkeypatch
):
    from tests.records import conn, seed

    seed(dynamodb, [conn("leaked", instance_id="host-a")])
    calls = []
    real = dynamodb.ainstance_items

    async def flaky(instance):
        calls.append(instance)
        if len(calls) == 1:
            raise RegistryUnavailable("DynamoDB query failed: EndpointConnectionError")
        return await real(instance)

    monkeypatch.setattr(dynamodb, "ainstance_items", flaky)

    async def scenario():
        real_keeper.mark_dirty()
        await asyncio.wait_for(real_keeper._repair, 5)

    run(scenario)
    assert len(calls) == 2 and not real_keeper.dirty
    assert stored(dynamodb) == set()
