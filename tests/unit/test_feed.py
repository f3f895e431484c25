"""The order of an inbox's event stream (``FeedReader``): what the bus delivers out of order still
leaves in id order, without a store read per gap; what the bus never delivers comes from the store."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import AsyncIterator

import pytest

from handoff_channel.bus import MemoryEventBus, resync_event
from handoff_channel.gateway.feed import FeedReader
from handoff_channel.models import Event, Role
from handoff_channel.store import SqlConversationStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlConversationStore]:
    s = SqlConversationStore(f"sqlite:///{tmp_path / 'feed.db'}")
    yield s
    await s.close()


async def committed(store: SqlConversationStore, n: int) -> list[Event]:
    """``n`` events in the store's feed, none of them published yet."""
    await store.get_or_create_conversation("c1", {})
    out = []
    for i in range(n):
        _msg, event = await store.add_message("c1", Role.VISITOR, f"line {i}")
        assert event is not None
        out.append(event)
    return out


async def drain(reader: FeedReader, timeout: float = 0.5) -> list[int]:
    ids: list[int] = []
    while True:
        try:
            run = await reader.read(timeout)
        except asyncio.TimeoutError:
            return ids
        assert run
        ids.extend(e.id for e in run)


async def test_events_published_out_of_order_leave_in_order_without_reading_the_store(store: SqlConversationStore) -> None:
    bus = MemoryEventBus()
    start = await store.last_event_id()
    e1, e2, e3 = await committed(store, 3)
    reader = FeedReader(store, bus.subscribe(), start)
    assert [e.id for e in (await reader.read(1))] == [e1.id, e2.id, e3.id]  # caught up from the store
    reads = reader.store_reads
    later = await committed(store, 3)
    # Another instance's event is still crossing Redis while this instance's later ones arrive.
    for ev in (later[1], later[2], later[0]):
        await bus.publish(ev)
    assert await drain(reader, 0.1) == [e.id for e in later]
    assert reader.store_reads == reads


async def test_a_missing_event_the_bus_never_brings_comes_from_the_store_after_a_short_wait(store: SqlConversationStore) -> None:
    bus = MemoryEventBus()
    last = await store.last_event_id()
    reader = FeedReader(store, bus.subscribe(), last, gap_wait_s=0.05)
    assert await drain(reader, 0.05) == []
    lost, kept = await committed(store, 2)
    await bus.publish(kept)  # Redis dropped ``lost``
    t = time.monotonic()
    run = await reader.read(5)
    waited = time.monotonic() - t
    assert run is not None and [e.id for e in run] == [lost.id, kept.id]
    assert 0.04 <= waited < 1.0  # held for the gap, not for the keep-alive timeout


async def test_the_same_event_twice_is_sent_once(store: SqlConversationStore) -> None:
    bus = MemoryEventBus()
    reader = FeedReader(store, bus.subscribe(), await store.last_event_id())
    assert await drain(reader, 0.05) == []
    (ev,) = await committed(store, 1)
    await bus.publish(ev)
    await bus.publish(ev)  # delivery across instances is at least once
    assert await drain(reader, 0.1) == [ev.id]


async def test_a_resync_reads_what_the_bus_missed(store: SqlConversationStore) -> None:
    bus = MemoryEventBus()
    reader = FeedReader(store, bus.subscribe(), await store.last_event_id())
    assert await drain(reader, 0.05) == []
    missed = await committed(store, 2)  # published while Redis was away
    await bus.publish(resync_event())
    assert await drain(reader, 0.1) == [e.id for e in missed]


async def test_a_stream_far_behind_catches_up_page_by_page_in_order(store: SqlConversationStore) -> None:
    bus = MemoryEventBus()
    start = await store.last_event_id()
    events = await committed(store, 1203)
    reader = FeedReader(store, bus.subscribe(), start)
    runs = []
    while True:
        try:
            run = await reader.read(0.05)
        except asyncio.TimeoutError:
            break
        assert run is not None
        runs.append([e.id for e in run])
    assert [len(r) for r in runs] == [500, 500, 203]
    assert [i for r in runs for i in r] == [e.id for e in events]
