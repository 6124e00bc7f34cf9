"""The lease rules with a clock of the test's own: who has lapsed, and who never may."""

import pytest

from realtime.core.leases import Lease, LeaseState, LeaseWatch, lease_key
from tests.conftest import FakeClock

LEASE, HEARTBEAT = 15.0, 3.0


def lease(instance: str, renewals: int, state: LeaseState = LeaseState.LIVE) -> Lease:
    return Lease(
        instance_id=instance,
        host="host",
        pid=1,
        started_at="2026-01-01T00:00:00.000Z",
        version="test",
        renewals=renewals,
        renewed_at=0.0,  # never read by the rules: another host's clock
        state=state,
        connections=0,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def watch(clock) -> LeaseWatch:
    return LeaseWatch(
        own_instance="me", lease_seconds=LEASE, heartbeat_seconds=HEARTBEAT, clock=clock
    )


def rounds(watch, clock, fleet, count: int, *, ok: bool = True) -> list[list[str]]:
    """`count` heartbeat rounds, each reading `fleet()`; the lapsed ids of each round."""
    seen = []
    for _ in range(count):
        clock.advance(HEARTBEAT)
        lapsed = watch.observe(fleet(), own_renewal_ok=ok)
        seen.append([each.instance_id for each in lapsed])
    return seen


def test_a_counter_that_keeps_moving_never_lapses(watch, clock):
    counter = iter(range(10_000))
    lapsed = rounds(watch, clock, lambda: [lease("a", next(counter))], 100)
    assert lapsed == [[]] * 100


def test_a_counter_that_stops_lapses_after_one_lease_and_not_before(watch, clock):
    assert watch.observe([lease("a", 7)], own_renewal_ok=True) == []
    # Seen at t=0; rounds at 3, 6, 9, 12 are within the lease; 15 is a whole lease later.
    assert rounds(watch, clock, lambda: [lease("a", 7)], 5) == [[], [], [], [], ["a"]]


def test_a_stall_shorter_than_the_lease_is_not_death(watch, clock):
    watch.observe([lease("a", 1)], own_renewal_ok=True)
    # "a" renewed just before it stalled for 8 s, then goes on renewing.
    clock.advance(HEARTBEAT)
    assert watch.observe([lease("a", 2)], own_renewal_ok=True) == []
    clock.advance(HEARTBEAT)
    assert watch.observe([lease("a", 2)], own_renewal_ok=True) == []  # stalled
    clock.advance(HEARTBEAT)
    assert watch.observe([lease("a", 2)], own_renewal_ok=True) == []
    clock.advance(HEARTBEAT)
    assert watch.observe([lease("a", 3)], own_renewal_ok=True) == []  # back


def test_own_lease_is_never_judged(watch, clock):
    assert rounds(watch, clock, lambda: [lease("me", 1)], 20) == [[]] * 20


def test_a_failed_own_renewal_forgets_everything_seen(watch, clock):
    watch.observe([lease("a", 1)], own_renewal_ok=True)
    rounds(watch, clock, lambda: [lease("a", 1)], 4)
    assert rounds(watch, clock, lambda: [lease("a", 1)], 1, ok=False) == [[]]
    # After the failure, a whole lease must pass again from the next good round.
    assert rounds(watch, clock, lambda: [lease("a", 1)], 6) == [[], [], [], [], [], ["a"]]


def test_a_fleet_wide_outage_makes_nobody_lapse(watch, clock):
    counter = {"a": 1}
    watch.observe([lease("a", 1)], own_renewal_ok=True)
    # 40 s in which nobody can renew or read: every round fails for every instance.
    rounds(watch, clock, lambda: [lease("a", counter["a"])], 13, ok=False)

    def fleet():
        counter["a"] += 1  # back: everyone renews again
        return [lease("a", counter["a"])]

    assert rounds(watch, clock, fleet, 10) == [[]] * 10


def test_an_observer_that_was_stalled_starts_afresh(watch, clock):
    watch.observe([lease("a", 1)], own_renewal_ok=True)
    clock.advance(LEASE + 5)  # this observer was stopped; "a" may well have renewed meanwhile
    assert watch.observe([lease("a", 1)], own_renewal_ok=True) == []
    assert rounds(watch, clock, lambda: [lease("a", 1)], 5)[-1] == ["a"]


def test_a_reaper_that_keeps_bumping_keeps_its_claim_and_one_that_dies_loses_it(watch, clock):
    counter = iter(range(1, 1000))
    reaping = lambda: [lease("a", next(counter), LeaseState.REAPING)]  # noqa: E731
    assert rounds(watch, clock, reaping, 10) == [[]] * 10
    stuck = lease("a", 500, LeaseState.REAPING)
    assert rounds(watch, clock, lambda: [stuck], 6)[-1] == ["a"]


def test_a_lease_that_disappears_is_forgotten(watch, clock):
    watch.observe([lease("a", 1)], own_renewal_ok=True)
    rounds(watch, clock, lambda: [], 1)
    # It comes back with the same counter (another instance id would be usual): seen anew.
    assert rounds(watch, clock, lambda: [lease("a", 1)], 5) == [[], [], [], [], []]


def test_claiming_restarts_the_observation(watch, clock):
    watch.observe([lease("a", 1)], own_renewal_ok=True)
    assert rounds(watch, clock, lambda: [lease("a", 1)], 5)[-1] == ["a"]
    watch.claimed("a", 2)
    assert rounds(watch, clock, lambda: [lease("a", 2, LeaseState.REAPING)], 4) == [[]] * 4


def test_a_lease_shorter_than_two_heartbeats_is_refused(clock):
    with pytest.raises(ValueError):
        LeaseWatch(own_instance="me", lease_seconds=5, heartbeat_seconds=3, clock=clock)


def test_lease_keys_never_meet_connection_ids_or_tenants():
    assert lease_key("host-1-abcd") == "instance#host-1-abcd"
