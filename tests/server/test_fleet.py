"""Membership against moto's in-process DynamoDB, with clocks of the test's own: joining,
renewing, one reaper per dead instance, exact quota counting, fencing, and reads that leave
written-off instances out."""

import asyncio
import logging

import pytest

from realtime.core.leases import LeaseState
from realtime.registry import LeaseLost
from realtime.server.fleet import Membership
from tests.conftest import FakeClock
from tests.records import conn, seed

HEARTBEAT, LEASE = 1.0, 3.0


class Fenced:
    """Records what on_fenced was told."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, old: str, new: str) -> None:
        self.calls.append((old, new))


def member(registry, instance_id: str, monotonic: FakeClock, fenced=None) -> Membership:
    return Membership(
        registry=registry,
        instance_id=instance_id,
        held_count=lambda: 0,
        heartbeat_seconds=HEARTBEAT,
        lease_seconds=LEASE,
        version="test",
        on_fenced=fenced or Fenced(),
        index_settle_seconds=0,
        clock=monotonic,
    )


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(100.0)


def run(coroutine):
    return asyncio.run(coroutine)


async def beats(members, monotonic, count: int) -> None:
    for _ in range(count):
        monotonic.advance(HEARTBEAT)
        for one in members:
            await one.beat()
        # Let reaping tasks started by this round run to their end.
        for _ in range(20):
            await asyncio.sleep(0)
        pending = [t for one in members for t in one._reaping.values()]
        if pending:
            await asyncio.gather(*pending)


def test_joining_writes_a_live_lease_and_renewals_bump_its_counter(dynamodb, monotonic):
    async def scenario():
        one = member(dynamodb, "host-1-aaaa", monotonic)
        await one.join()
        first = dynamodb.lease("host-1-aaaa")
        await beats([one], monotonic, 3)
        return first, dynamodb.lease("host-1-aaaa")

    first, later = run(scenario())
    assert first.state is LeaseState.LIVE and first.renewals == 0
    assert later.renewals == 3
    assert [lease.instance_id for lease in dynamodb.leases()] == ["host-1-aaaa"]


def test_a_dead_instance_is_reaped_by_one_survivor_with_its_quota_counted_down(
    dynamodb, monotonic, caplog
):
    caplog.set_level(logging.INFO, logger="realtime.server.fleet")
    dynamodb.tenant_limit = 10
    dead = "host-dead-1-dddd"

    async def scenario():
        survivors = [member(dynamodb, f"host-{n}-{n}{n}{n}{n}", monotonic) for n in (1, 2)]
        corpse = member(dynamodb, dead, monotonic)
        await corpse.join()
        for n in range(3):
            dynamodb.register(conn(f"c{n}", instance_id=dead))
        await beats([*survivors, corpse], monotonic, 2)
        # It dies: no more renewals. Both survivors find it lapsed after a lease.
        await beats(survivors, monotonic, int(LEASE / HEARTBEAT) + 2)
        return survivors

    survivors = run(scenario())
    assert dynamodb.lease(dead) is None
    assert list(dynamodb.for_instance(dead, include_expired=True)) == []
    assert dynamodb.quota_state("acme")[0] == 0  # three registered, three counted down
    # Both survivors found it lapsed in the same round; one takeover won.
    taken = [r.getMessage() for r in caplog.records if "instance.taken_over" in r.getMessage()]
    reaped = [r.getMessage() for r in caplog.records if "instance.reaped" in r.getMessage()]
    assert len(taken) == 1 and len(reaped) == 1
    assert f"instance_id={dead}" in reaped[0] and "connections=3" in reaped[0]
    assert all(dynamodb.lease(s.instance_id).state is LeaseState.LIVE for s in survivors)


def test_only_one_taker_wins_a_lapsed_lease(dynamodb, monotonic):
    async def scenario():
        corpse = member(dynamodb, "host-dead-2-dddd", monotonic)
        await corpse.join()
        seen = dynamodb.lease("host-dead-2-dddd")
        first = dynamodb.take_over_lease(seen, reaper="host-1-aaaa")
        second = dynamodb.take_over_lease(seen, reaper="host-2-bbbb")
        return first, second

    first, second = run(scenario())
    assert first == 1 and second is None
    lease = dynamodb.lease("host-dead-2-dddd")
    assert (lease.state, lease.reaper) == (LeaseState.REAPING, "host-1-aaaa")


def test_reads_leave_out_a_written_off_instance_before_its_items_are_deleted(dynamodb):
    dead, alive = "host-dead-3-dddd", "host-4-aaaa"
    seed(dynamodb, [conn("d1", instance_id=dead), conn("a1", instance_id=alive)])

    async def scenario():
        corpse = member(dynamodb, dead, FakeClock())
        await corpse.join()

    run(scenario())
    dynamodb.leases()
    assert {c.connection_id for c in dynamodb.for_tenant("acme").connections} == {"d1", "a1"}
    dynamodb.take_over_lease(dynamodb.lease(dead), reaper=alive)
    dynamodb.leases()  # a heartbeat's fleet read
    assert {c.connection_id for c in dynamodb.for_tenant("acme").connections} == {"a1"}
    assert dynamodb.get("d1") is None
    assert dynamodb.counts() == {"acme": {"prod": {"client": 1}}}
    assert list(dynamodb.for_instance(dead)) == []
    # The reaper still finds them: it must delete them.
    assert [c.connection_id for c in dynamodb.for_instance(dead, include_expired=True)] == ["d1"]


def test_a_renewal_that_finds_its_lease_taken_fences_and_rejoins_under_a_new_id(
    dynamodb, monotonic
):
    fenced = Fenced()

    async def scenario():
        stalled = member(dynamodb, "host-5-1-eeee", monotonic, fenced)
        await stalled.join()
        dynamodb.take_over_lease(dynamodb.lease("host-5-1-eeee"), reaper="host-6-ffff")
        await stalled.beat()  # the renewal fails its condition
        assert not stalled.held
        await stalled.beat()  # joins again
        return stalled

    stalled = run(scenario())
    ((old, new),) = fenced.calls
    assert old == "host-5-1-eeee" and new == stalled.instance_id != old
    assert new.startswith("host-5-1-")
    assert dynamodb.lease(new).state is LeaseState.LIVE


def test_a_failed_renewal_from_an_outage_is_not_fencing(dynamodb, monotonic, monkeypatch):
    from realtime.registry import RegistryUnavailable

    fenced = Fenced()

    async def scenario():
        one = member(dynamodb, "host-7-aaaa", monotonic, fenced)
        await one.join()

        def down(*args, **kwargs):
            raise RegistryUnavailable("DynamoDB down", reason="unreachable")

        monkeypatch.setattr(dynamodb, "renew_lease", down)
        monkeypatch.setattr(dynamodb, "leases", down)
        await beats([one], monotonic, 5)
        return one

    one = run(scenario())
    assert fenced.calls == [] and one.held


def test_renewing_a_lease_that_is_gone_raises_lease_lost(dynamodb):
    with pytest.raises(LeaseLost):
        dynamodb.renew_lease("host-never-joined", connections=0, renewed_at=0.0)


def test_leaving_cleanly_deletes_the_lease_and_leaving_with_leftovers_does_not(dynamodb, monotonic):
    async def scenario():
        clean = member(dynamodb, "host-8-aaaa", monotonic)
        left_items = member(dynamodb, "host-9-bbbb", monotonic)
        await clean.join()
        await left_items.join()
        await clean.leave(clean=True)
        await left_items.leave(clean=False)

    run(scenario())
    assert dynamodb.lease("host-8-aaaa") is None
    assert dynamodb.lease("host-9-bbbb").state is LeaseState.LIVE  # lapses; a survivor reaps
