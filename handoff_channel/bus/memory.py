"""In-process bus: fan-out to one queue per subscriber. A subscriber that falls too far behind is
dropped (its iterator ends) rather than growing memory without bound; SSE clients then reconnect
and replay from the store with Last-Event-ID, so nothing is lost."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import AsyncIterator, Optional

from ..models import Event


class MemorySubscription:
    """One subscriber's backlog. A waiting reader is woken directly by the publish (one step of
    the event loop; an ``asyncio.Queue`` read under ``asyncio.wait_for`` took three, each behind
    whatever else the loop had ready: most of an SSE event's time in the gateway at load)."""

    def __init__(self, bus: "MemoryEventBus", maxsize: int) -> None:
        self._bus = bus
        self._items: deque[Event] = deque()
        self._maxsize = maxsize
        self._waiter: Optional[asyncio.Future[None]] = None
        self._closed = False
        self.overflowed = False

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _offer(self, event: Event) -> None:
        if self._closed:
            return
        if len(self._items) >= self._maxsize:
            # Fallen too far behind: drop the unread backlog and end (the SSE client reconnects
            # with Last-Event-ID and replays from the store).
            self.overflowed = True
            self._bus._subscribers.discard(self)
            self._items.clear()
            self._closed = True
        else:
            self._items.append(event)
        self._wake()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            item = await self.get()
            if item is None:
                return
            yield item

    async def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event; None once the subscription has ended (closed, or dropped for falling
        behind) and its backlog is read. Raises ``asyncio.TimeoutError`` after ``timeout`` s."""
        if not self._items and not self._closed:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, self._wake) if timeout is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._items and not self._closed:
                raise asyncio.TimeoutError
        return self._items.popleft() if self._items else None

    async def close(self) -> None:
        self._bus._subscribers.discard(self)
        self._closed = True  # what is already queued is still read, then the iteration ends
        self._wake()


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
