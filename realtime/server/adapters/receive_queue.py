"""ReceiveQueue: the messages waiting for one connection's application, in about 0.2 KiB.

daphne and uvicorn hand each connection's events to the application through an
`asyncio.Queue`: three deques and an `Event` (a fourth), about 3 KiB per connection whether
anything waits or not. One reader, and rarely more than one message waiting, need a list and
a future. Used by uvicorn.py and daphne.py beside it.
"""

import asyncio

__all__ = ["ReceiveQueue"]


class ReceiveQueue:
    """A FIFO with one reader (the application's `receive`): what the servers use of a Queue."""

    __slots__ = ("_items", "_waiter")

    def __init__(self):
        # A list, not a deque: an empty deque allocates a 64-slot block, and the queue is
        # nearly always empty or one long.
        self._items: list = []
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self):
        if self._waiter is not None:
            raise RuntimeError("a ReceiveQueue has one reader; another is already waiting")
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items
