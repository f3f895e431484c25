"""In-process bus: fan-out to one queue per subscriber. A subscriber that falls too far behind is
dropped (its iterator ends) rather than growing memory without bound; SSE clients then reconnect
and replay from the store with Last-Event-ID, so nothing is lost."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Optional

from ..models import Event

_CLOSED = object()


class MemorySubscription:
    def __init__(self, bus: "MemoryEventBus", maxsize: int) -> None:
        self._bus = bus
        self._queue: "asyncio.Queue[object]" = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False

    def _offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self._bus._subscribers.discard(self)
            self._end_now()

    def _end_now(self) -> None:
        # Drop the unread backlog: only the end marker is left. (No reader is waiting on a full
        # queue, so swapping it is safe.)
        self._queue = asyncio.Queue()
        self._queue.put_nowait(_CLOSED)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            item = await self._queue.get()
            if item is _CLOSED:
                return
            assert isinstance(item, Event)
            yield item

    async def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        item = await asyncio.wait_for(self._queue.get(), timeout)
        return item if isinstance(item, Event) else None

    async def close(self) -> None:
        self._bus._subscribers.discard(self)
        try:
            self._queue.put_nowait(_CLOSED)
        except asyncio.QueueFull:
            self._end_now()  # a full backlog must not keep the iteration from ending


class MemoryEventBus:
    """``EventBus`` for one process."""

    def __init__(self, max_backlog: int = 10_000) -> None:
        self._subscribers: set[MemorySubscription] = set()
        self._max_backlog = max_backlog

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        for sub in list(self._subscribers):
            await sub.close()

    async def publish(self, event: Event) -> None:
        for sub in list(self._subscribers):
            sub._offer(event)

    def subscribe(self) -> MemorySubscription:
        sub = MemorySubscription(self, self._max_backlog)
        self._subscribers.add(sub)
        return sub
