"""MessageRate: the per-connection token bucket and its abuse meter."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.core.limits import AddressGate, MessageRate, Verdict


def rate(rate=10.0, burst=5, abuse=3, now=0.0) -> MessageRate:
    return MessageRate(rate=rate, burst=burst, abuse=abuse, now=now)


def test_a_burst_is_allowed_then_refused():
    limiter = rate()
    assert [limiter.check(0.0) for _ in range(5)] == [Verdict.ALLOW] * 5
    assert limiter.check(0.0) is Verdict.REFUSE


def test_tokens_refill_at_the_rate():
    limiter = rate()
    for _ in range(5):
        limiter.check(0.0)
    assert limiter.check(0.05) is Verdict.REFUSE  # half a token back
    assert limiter.check(0.15) is Verdict.ALLOW  # one whole token after 0.1 s more


def test_sustained_sending_over_the_rate_is_abuse():
    limiter = rate(abuse=3)
    for _ in range(5):
        limiter.check(0.0)
    assert [limiter.check(0.0) for _ in range(4)] == [Verdict.REFUSE] * 3 + [Verdict.ABUSE]


def test_an_occasional_overrun_is_forgiven_over_the_abuse_window():
    limiter = rate(abuse=3)
    now = 0.0
    for _ in range(20):  # every 10 s, a burst of 8: 3 over the bucket of 5
        verdicts = [limiter.check(now) for _ in range(8)]
        assert Verdict.ABUSE not in verdicts
        assert verdicts.count(Verdict.REFUSE) == 3
        now += 10.0


def test_steady_sending_at_the_rate_is_always_allowed():
    limiter = rate(rate=10.0, burst=1)
    assert all(limiter.check(i * 0.1) is Verdict.ALLOW for i in range(1000))


def test_zero_rate_turns_the_limit_off():
    limiter = rate(rate=0)
    assert all(limiter.check(0.0) is Verdict.ALLOW for _ in range(10_000))


def test_a_clock_going_backwards_never_adds_tokens():
    limiter = rate(burst=1)
    assert limiter.check(100.0) is Verdict.ALLOW
    assert limiter.check(50.0) is Verdict.REFUSE


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=200))
def test_never_allows_more_than_burst_plus_rate_times_elapsed(offsets):
    times = sorted(offsets)
    limiter = rate(rate=2.0, burst=3, abuse=1000, now=times[0] if times else 0.0)
    allowed = sum(limiter.check(t) is Verdict.ALLOW for t in times)
    span = (times[-1] - times[0]) if times else 0.0
    assert allowed <= 3 + 2.0 * span + 1e-9


@pytest.mark.parametrize("burst, abuse", [(0, 0), (-1, -5)])
def test_sizes_below_one_are_raised_to_one(burst, abuse):
    limiter = rate(burst=burst, abuse=abuse)
    assert limiter.check(0.0) is Verdict.ALLOW
    assert limiter.check(0.0) is Verdict.REFUSE
    assert limiter.check(0.0) is Verdict.ABUSE


# --- AddressGate ------------------------------------------------------------------------------


def gate(**overrides) -> AddressGate:
    return AddressGate(
        **{"max_connections": 3, "handshake_rate": 2.0, "handshake_burst": 4, **overrides}
    )


def test_an_address_is_capped_in_open_connections_and_others_are_not():
    g = gate()
    assert [g.open("a") for _ in range(4)] == [True, True, True, False]
    assert g.open("b")
    g.close("a")
    assert g.open("a") and not g.open("a")


def test_closing_every_connection_forgets_the_address():
    g = gate()
    g.open("a")
    g.close("a")
    assert g.open_count("a") == 0 and g._open == {}


def test_handshakes_are_a_token_bucket_per_address():
    g = gate()
    assert [g.handshake("a", 0.0) for _ in range(5)] == [True] * 4 + [False]
    assert g.handshake("b", 0.0)  # another address has its own bucket
    assert not g.handshake("a", 0.4)  # 0.8 of a token back
    assert g.handshake("a", 0.6)  # 1.2: one more


def test_zero_turns_each_limit_off():
    g = gate(max_connections=0, handshake_rate=0)
    assert all(g.open("a") for _ in range(10_000))
    assert all(g.handshake("a", 0.0) for _ in range(10_000))


def test_refilled_buckets_are_swept_so_the_table_stays_bounded(monkeypatch):
    monkeypatch.setattr(AddressGate, "SWEEP_AT", 100)
    g = gate()
    for n in range(100):
        g.handshake(f"10.0.0.{n}", 0.0)
    assert len(g._buckets) == 100
    g.handshake("10.0.1.1", 10.0)  # every earlier bucket has refilled by now
    assert list(g._buckets) == ["10.0.1.1"]
