"""TimeoutSweeper: idle timeout and maximum lifetime, with a fake monotonic clock."""

import asyncio

import pytest

from realtime.server.timeouts import TimeoutSweeper, sweep_interval


class Conn:
    def __init__(self, opened_at: float, last_seen: float):
        self.opened_at = opened_at
        self.last_seen = last_seen
        self.expired: list[str] = []

    async def expire(self, reason: str) -> None:
        self.expired.append(reason)


def sweeper(conns, idle=60.0, lifetime=3600.0, now=0.0) -> TimeoutSweeper:
    return TimeoutSweeper(
        connections=lambda: conns, idle_seconds=idle, lifetime_seconds=lifetime, clock=lambda: now
    )


@pytest.mark.parametrize(
    "idle, lifetime, interval",
    [(0, 0, 0.0), (60, 0, 15.0), (0, 3600, 30.0), (2, 3600, 1.0), (20, 8, 2.0)],
)
def test_sweep_interval_is_a_quarter_of_the_shortest_limit_within_1_to_30_s(
    idle, lifetime, interval
):
    assert sweep_interval(idle, lifetime) == interval


def test_sweep_closes_idle_and_old_connections_only():
    idle = Conn(opened_at=900, last_seen=900)  # silent for 100 s
    old = Conn(opened_at=-3000, last_seen=999)  # open for 4000 s, chatty
    fresh = Conn(opened_at=990, last_seen=999)
    limits = sweeper([idle, old, fresh], idle=60, lifetime=3600, now=1000)
    assert asyncio.run(limits.sweep()) == 2
    assert (idle.expired, old.expired, fresh.expired) == (["idle_timeout"], ["max_lifetime"], [])


def test_a_limit_of_zero_is_off():
    ancient = Conn(opened_at=-1e9, last_seen=-1e9)
    limits = sweeper([ancient], idle=0, lifetime=0, now=0)
    assert not limits.enabled
    assert asyncio.run(limits.sweep()) == 0


def test_boundaries_are_inclusive():
    at_idle = Conn(opened_at=0, last_seen=40)
    limits = sweeper([at_idle], idle=60, lifetime=0, now=100)
    assert limits.reason(at_idle, 99.9) is None
    assert limits.reason(at_idle, 100) == "idle_timeout"
