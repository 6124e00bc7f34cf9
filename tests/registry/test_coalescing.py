"""Coalescer: concurrent requests become few batches, each request gets its own outcome."""

import asyncio

import pytest

from realtime.registry.coalescing import Coalescer


class Recorder:
    def __init__(self, fail_on=(), latency=0.01):
        self.batches: list[list] = []
        self.fail_on = set(fail_on)
        self.latency = latency

    async def __call__(self, batch):
        self.batches.append(list(batch))
        await asyncio.sleep(self.latency)
        return [ValueError(item) if item in self.fail_on else item * 10 for item in batch]


def test_a_lone_request_goes_out_at_once_alone():
    recorder = Recorder(latency=0)
    coalescer = Coalescer(recorder, max_batch=25)
    assert asyncio.run(coalescer.submit(1)) == 10
    assert recorder.batches == [[1]]


def test_requests_arriving_while_a_batch_is_in_flight_go_out_together():
    recorder = Recorder()
    coalescer = Coalescer(recorder, max_batch=25)

    async def scenario():
        return await asyncio.gather(*(coalescer.submit(i) for i in range(60)))

    assert asyncio.run(scenario()) == [i * 10 for i in range(60)]
    sizes = [len(batch) for batch in recorder.batches]
    assert max(sizes) <= 25 and sum(sizes) == 60
    assert len(sizes) <= 5  # not 60 calls


def test_each_request_gets_its_own_failure():
    recorder = Recorder(fail_on={3, 7})
    coalescer = Coalescer(recorder, max_batch=25)

    async def scenario():
        return await asyncio.gather(
            *(coalescer.submit(i) for i in range(10)), return_exceptions=True
        )

    outcomes = asyncio.run(scenario())
    assert [type(o).__name__ if isinstance(o, Exception) else o for o in outcomes] == [
        0, 10, 20, "ValueError", 40, 50, 60, "ValueError", 80, 90,
    ]  # fmt: skip


def test_a_batch_that_raises_fails_each_of_its_requests_and_not_the_next():
    calls = []

    async def run_batch(batch):
        calls.append(list(batch))
        if len(calls) == 1:
            raise ConnectionError("endpoint down")
        return [item for item in batch]

    coalescer = Coalescer(run_batch, max_batch=25)

    async def scenario():
        first = await asyncio.gather(coalescer.submit(1), return_exceptions=True)
        second = await coalescer.submit(2)
        return first, second

    first, second = asyncio.run(scenario())
    assert isinstance(first[0], ConnectionError) and second == 2


def test_a_caller_that_gave_up_does_not_break_the_batch():
    recorder = Recorder(latency=0.05)
    coalescer = Coalescer(recorder, max_batch=25)

    async def scenario():
        impatient = asyncio.ensure_future(coalescer.submit(1))
        patient = asyncio.ensure_future(coalescer.submit(2))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    assert asyncio.run(scenario()) == 20


@pytest.mark.parametrize("runs", [3])
def test_a_new_event_loop_starts_afresh(runs):
    coalescer = Coalescer(Recorder(latency=0), max_batch=25)
    for i in range(runs):
        assert asyncio.run(coalescer.submit(i)) == i * 10
