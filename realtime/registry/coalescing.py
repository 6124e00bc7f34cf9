"""Coalescing: concurrent requests of one kind, carried out as a few batch calls.

boto3 spends about a millisecond of CPU on each DynamoDB call, whatever it carries, and that
CPU, not DynamoDB's latency, bounds how fast a server can register connections. A Coalescer
turns the requests that arrive while a batch is in flight into the next batch: at low load a
request goes out alone and at once (no timer, no added latency); under load, batches grow to
`max_batch` and the per-request cost falls with them.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["Coalescer"]


class Coalescer[T, R]:
    """Batches concurrent `submit` calls.

    Args:
        run_batch: carries out a batch; returns one outcome per request, in order. If it
            raises, every request of the batch fails with that exception.
        max_batch: the most requests in one batch.
        max_in_flight: batches carried out at the same time.
    """

    def __init__(
        self,
        # Per request: a result, or the exception that request (and only it) failed with.
        run_batch: Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_batch: int,
        max_in_flight: int = 4,
    ):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._pending: list[tuple[T, asyncio.Future]] = []
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flushes: set[asyncio.Task] = set()
        self.batches = 0  # how many batch calls were made: for tests and benchmarks

    async def submit(self, request: T) -> R:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests run several): start afresh
            self._loop, self._pending, self._in_flight = loop, [], 0
        future = loop.create_future()
        self._pending.append((request, future))
        # Another batch starts when none is in flight, or when a full one is waiting:
        # otherwise requests wait for the batch in flight to return, and go out together.
        if self._in_flight == 0 or (
            len(self._pending) >= self.max_batch and self._in_flight < self.max_in_flight
        ):
            self._in_flight += 1
            flush = loop.create_task(self._flush())
            self._flushes.add(flush)  # referenced until done, as asyncio asks
            flush.add_done_callback(self._flushes.discard)
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = (
                    self._pending[: self.max_batch],
                    self._pending[self.max_batch :],
                )
                self.batches += 1
                try:
                    outcomes = await self.run_batch([request for request, _ in batch])
                except Exception as exc:  # the whole batch failed: each request learns why
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller gave up; nobody to tell
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._in_flight -= 1
