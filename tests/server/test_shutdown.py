"""The drain's close schedule (pure), and the setting that shapes it.

The drain itself is tested end to end, against real daphne processes:
tests/e2e/test_rolling_restart_e2e.py and the shutdown tests of tests/e2e/test_hardening_e2e.py.
"""

import itertools
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.server.shutdown import TICK_SECONDS, close_schedule
from tests.processes import ROOT, base_env


def test_no_connections_no_schedule():
    assert close_schedule(0, 10.0) == []


def test_spread_zero_closes_everyone_at_once():
    assert close_schedule(2000, 0.0) == [(0.0, 2000)]


def test_spread_closes_in_even_slices_one_per_tick():
    schedule = close_schedule(2000, 10.0)
    assert len(schedule) == 100
    assert schedule[0] == (0.0, 20)
    assert schedule[1] == (pytest.approx(0.1), 40)
    assert schedule[-1] == (pytest.approx(9.9), 2000)


def test_fewer_connections_than_ticks_close_one_at_a_time_over_the_window():
    assert close_schedule(4, 10.0) == [(0.0, 1), (2.5, 2), (5.0, 3), (7.5, 4)]


@given(
    count=st.integers(min_value=1, max_value=100_000),
    spread=st.floats(min_value=0.0, max_value=600.0, allow_nan=False),
)
def test_every_connection_is_closed_once_within_the_window(count, spread):
    schedule = close_schedule(count, spread)
    offsets = [offset for offset, _ in schedule]
    closed_by = [end for _, end in schedule]
    assert closed_by[-1] == count  # everyone, in the end
    assert all(a < b for a, b in itertools.pairwise(closed_by))  # never none
    assert offsets == sorted(offsets)
    assert offsets[0] == 0.0 and offsets[-1] <= spread
    if len(offsets) > 1:  # at most one slice per tick
        assert min(b - a for a, b in itertools.pairwise(offsets)) >= TICK_SECONDS * 0.999
    # Even: no slice more than one connection larger than another.
    sizes = [b - a for a, b in zip([0, *closed_by], closed_by, strict=False)]
    assert max(sizes) - min(sizes) <= 1


def load(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DRAIN_SPREAD_SECONDS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base_env(DJANGO_SETTINGS_MODULE="project.settings", DEBUG="true", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env, spread",
    [({}, 10.0), ({"DRAIN_SECONDS": "8"}, 4.0), ({"DRAIN_SPREAD_SECONDS": "0"}, 0.0)],
)
def test_the_spread_defaults_to_half_the_drain(env, spread):
    result = load(**env)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == spread


@pytest.mark.parametrize("spread", ["10.5", "-1"])
def test_a_spread_that_leaves_no_time_to_deregister_is_refused(spread):
    result = load(DRAIN_SECONDS="20", DRAIN_SPREAD_SECONDS=spread)
    assert result.returncode != 0
    assert "DRAIN_SPREAD_SECONDS must be between 0 and DRAIN_SECONDS / 2" in result.stderr
