"""The order of one inbox's event stream.

An SSE stream sends the feed in id order, and the inbox drops any event at or below the last id it
handled, so a stream must never send an id before a lower one. The bus does not promise that order:
with several instances, this instance's events reach its subscribers at once while another
instance's earlier events are still crossing Redis. ``FeedReader`` holds an event that arrives
above a gap for a moment, and releases the run in order once the missing ids have come by the bus.
Only if they have not come within ``gap_wait_s`` (a message Redis lost, an instance that died
between commit and publish), or after the bus asked for a resync, does it read the store.

Reading the store at every gap, as the stream used to, cost one query per open inbox per gap: with
two instances nearly every other event opened one.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from ..bus import RESYNC, Subscription
from ..models import Event
from ..store import ConversationStore

# How long an event above a gap waits for the missing ids to arrive by the bus. Another instance's
# event takes a millisecond or two through Redis; this is the patience for one that never comes.
GAP_WAIT_S = 0.25
# Held events beyond this many: stop waiting and read the store (bounds a stream's memory).
MAX_HELD = 500
# Rows per store read (the store's own page size for events_after).
PAGE = 500


class FeedReader:
    """The events one stream sends next, in id order, starting after ``last``.

    ``read`` returns them in runs: a run the bus delivered in order, the run a late event released,
    or a page read from the store. The first read catches up from the store.
    """

    def __init__(self, store: ConversationStore, sub: Subscription, last: int, *, gap_wait_s: float = GAP_WAIT_S) -> None:
        self.store = store
        self.sub = sub
        self.last = last
        self.gap_wait_s = gap_wait_s
        self.store_reads = 0
        self._held: dict[int, Event] = {}
        self._gap_deadline: Optional[float] = None
        self._behind = True  # read the store first: what the client missed before subscribing

    async def read(self, timeout: float) -> Optional[list[Event]]:
        """The next run of events (never empty). Raises ``asyncio.TimeoutError`` when nothing was
        ready within ``timeout`` s; returns None when the subscription ended (dropped for falling
        behind: the client reconnects with Last-Event-ID)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._behind:
                run = await self._from_store()
                if run:
                    return run
            wait = deadline - loop.time()
            if self._gap_deadline is not None:
                wait = min(wait, self._gap_deadline - loop.time())
            try:
                ev = await self.sub.get(max(wait, 0.0))
            except asyncio.TimeoutError:
                if self._gap_deadline is not None and loop.time() >= self._gap_deadline:
                    self._behind = True  # the missing ids did not come by the bus
                    continue
                if loop.time() >= deadline:
                    raise
                continue
            if ev is None:
                return None
            if ev.type == RESYNC:
                self._behind = True  # the bus may have missed events
                continue
            if ev.id <= self.last or ev.id in self._held:
                continue
            self._held[ev.id] = ev
            run = self._release()
            if run:
                return run
            if self._gap_deadline is None:
                self._gap_deadline = loop.time() + self.gap_wait_s
            if len(self._held) > MAX_HELD:
                self._behind = True

    def _release(self) -> list[Event]:
        """The held events that follow ``last`` without a gap."""
        run = []
        while (ev := self._held.pop(self.last + 1, None)) is not None:
            run.append(ev)
            self.last = ev.id
        if run:
            # Progress: what is still held waits afresh for its own gap.
            self._gap_deadline = None if not self._held else asyncio.get_running_loop().time() + self.gap_wait_s
        return run

    async def _from_store(self) -> list[Event]:
        """A page of the feed after ``last``: the store is the record, so a hole it has too (an id
        that was never committed) is passed over."""
        self.store_reads += 1
        page = await self.store.events_after(self.last, limit=PAGE)
        self._behind = len(page) >= PAGE
        if page:
            self.last = page[-1].id
        for held in [i for i in self._held if i <= self.last]:
            del self._held[held]
        run = page + self._release()
        if not self._behind:
            # The page holds everything committed after ``last``, and every held event was
            # committed before it was published: none should be left. Should one be (a store
            # that hides a row), it is sent rather than waited for again and again.
            run.extend(self._held[i] for i in sorted(self._held))
            if self._held:
                self.last = max(self._held)
            self._held.clear()
            self._gap_deadline = None
        return run
