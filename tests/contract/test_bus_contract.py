"""What every EventBus adapter promises, run against each of them (memory, Redis).

Three groups: what a bus does for the subscribers of its own process (every adapter); what a bus
shared by several gateway instances adds (each ``new()`` bus is another instance); and how a shared
bus lives through a Redis outage (a private redis-server that the test kills, freezes and restarts).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Callable, Optional

import pytest

from handoff_channel.bus import RESYNC, Subscription
from handoff_channel.models import Event

from .conftest import BusKit, RedisKit

WAIT = 10.0  # generous: a failure shows up as a timeout, a pass is fast
_ids = itertools.count(1)


def event(text: str = "", conversation_id: str = "c-1") -> Event:
    n = next(_ids)
    return Event(id=n, type="message_created", conversation_id=conversation_id,
                 data={"message": {"text": text or f"message {n}"}}, created_at=1_700_000_000.0 + n)


async def receive(sub: Subscription, count: int, timeout: float = WAIT) -> list[Optional[Event]]:
    return [await sub.get(timeout=timeout) for _ in range(count)]


async def receive_until(
    sub: Subscription, done: Callable[[Event], bool], timeout: float = WAIT
) -> list[Event]:
    """Everything up to and including the first event ``done`` accepts."""
    seen: list[Event] = []

    async def loop() -> list[Event]:
        while True:
            ev = await sub.get()
            assert ev is not None, f"subscription dropped; had {[e.type for e in seen]}"
            seen.append(ev)
            if done(ev):
                return seen

    try:
        return await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"never got the expected event; had {[(e.type, e.id) for e in seen]}") from None


async def drain(sub: Subscription, timeout: float = WAIT) -> list[Event]:
    """Iterate the subscription to its end (fails if it does not end)."""
    async def loop() -> list[Event]:
        return [ev async for ev in sub]

    try:
        return await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError("the subscription did not end") from None


def is_resync(ev: Optional[Event]) -> bool:
    return ev is not None and ev.type == RESYNC


# -- every adapter: the subscribers of one process --------------------------------------------------


async def test_subscriber_receives_published_events_in_order(buses: BusKit) -> None:
    bus = await buses.new()
    sub = bus.subscribe()
    sent = [event() for _ in range(20)]
    for ev in sent:
        await bus.publish(ev)
    assert await receive(sub, 20) == sent


async def test_every_subscriber_gets_every_event(buses: BusKit) -> None:
    bus = await buses.new()
    subs = [bus.subscribe() for _ in range(3)]
    sent = [event() for _ in range(5)]
    for ev in sent:
        await bus.publish(ev)
    for sub in subs:
        assert await receive(sub, 5) == sent


async def test_subscriber_sees_only_what_is_published_after_it_subscribed(buses: BusKit) -> None:
    bus = await buses.new()
    before, after = event(), event()
    await bus.publish(before)
    sub = bus.subscribe()
    await bus.publish(after)
    assert await sub.get(timeout=WAIT) == after


async def test_published_event_keeps_every_field(buses: BusKit) -> None:
    bus = await buses.new()
    sub = bus.subscribe()
    ev = Event(id=42, type="handoff_requested", conversation_id="conv-é",
               data={"nested": {"list": [1, 2.5, None, True], "text": "ünïcode ✓"}}, created_at=1_700_000_123.25)
    await bus.publish(ev)
    assert await sub.get(timeout=WAIT) == ev


async def test_closing_a_subscription_ends_it_and_spares_the_others(buses: BusKit) -> None:
    bus = await buses.new()
    leaving, staying = bus.subscribe(), bus.subscribe()
    await leaving.close()
    assert await drain(leaving) == []
    ev = event()
    await bus.publish(ev)
    assert await staying.get(timeout=WAIT) == ev


async def test_closing_the_bus_ends_every_subscription(buses: BusKit) -> None:
    bus = await buses.new()
    idle, behind = bus.subscribe(), bus.subscribe()
    ev = event()
    await bus.publish(ev)
    assert await idle.get(timeout=WAIT) == ev
    iterating = asyncio.create_task(drain(idle))
    await bus.close()
    assert await iterating == []
    assert await drain(behind) in ([ev], [])  # what it had not read yet may be delivered or not


async def test_closing_the_bus_ends_a_subscription_whose_backlog_is_full(buses: BusKit) -> None:
    bus = await buses.new(max_backlog=3)
    sub = bus.subscribe()
    for _ in range(3):
        await bus.publish(event())
    await bus.close()
    assert len(await drain(sub)) <= 3


async def test_slow_subscriber_is_dropped_without_holding_up_the_others(buses: BusKit) -> None:
    bus = await buses.new(max_backlog=5)
    slow, fast = bus.subscribe(), bus.subscribe()
    sent = [event() for _ in range(6)]
    for ev in sent:
        await bus.publish(ev)
        assert await fast.get(timeout=WAIT) == ev
    # Dropped: its backlog is discarded, later events are not kept for it, and its iteration ends.
    for _ in range(50):
        ev = event()
        await bus.publish(ev)
        assert await fast.get(timeout=WAIT) == ev
    assert await drain(slow) == []


async def test_dropped_subscriber_is_told_by_get_returning_none(buses: BusKit) -> None:
    bus = await buses.new(max_backlog=2)
    slow = bus.subscribe()
    for _ in range(3):
        await bus.publish(event())
    assert await slow.get(timeout=WAIT) is None


async def test_a_reader_that_timed_out_loses_nothing_published_later(buses: BusKit) -> None:
    # The SSE stream's loop: wait with a keep-alive timeout, send a comment, wait again.
    bus = await buses.new()
    sub = bus.subscribe()
    got = []

    async def reader() -> None:
        while len(got) < 6:
            try:
                ev = await sub.get(timeout=0.01)
            except asyncio.TimeoutError:
                continue
            assert ev is not None
            got.append(ev)

    task = asyncio.create_task(reader())
    sent = []
    for i in range(6):
        await asyncio.sleep(0.011 if i % 2 else 0.0)  # some land as a timeout fires, some while waiting
        sent.append(event())
        await bus.publish(sent[-1])
    await asyncio.wait_for(task, WAIT)
    assert got == sent
    with pytest.raises(asyncio.TimeoutError):
        await sub.get(timeout=0.01)


async def test_closing_a_subscription_still_hands_out_what_it_holds(buses: BusKit) -> None:
    bus = await buses.new()
    sub = bus.subscribe()
    sent = [event(), event()]
    for ev in sent:
        await bus.publish(ev)
    await asyncio.sleep(0.05)  # Redis: the events have come back from the server
    await sub.close()
    assert [await sub.get(timeout=WAIT), await sub.get(timeout=WAIT), await sub.get(timeout=WAIT)] == [*sent, None]


async def test_publish_without_subscribers_is_harmless(buses: BusKit) -> None:
    bus = await buses.new()
    await bus.publish(event())
    sub = bus.subscribe()
    ev = event()
    await bus.publish(ev)
    assert await sub.get(timeout=WAIT) == ev


async def test_close_leaves_no_background_task_behind(buses: BusKit) -> None:
    before = asyncio.all_tasks()
    bus = await buses.new()
    sub = bus.subscribe()
    await bus.publish(event())
    await sub.get(timeout=WAIT)
    await bus.close()
    assert [t for t in asyncio.all_tasks() - before if not t.done()] == []


# -- shared adapters: several gateway instances -----------------------------------------------------


async def test_events_of_another_instance_arrive_in_its_order(shared_buses: BusKit) -> None:
    here, there = await shared_buses.new(), await shared_buses.new()
    sub = here.subscribe()
    sent = [event() for _ in range(20)]
    for ev in sent:
        await there.publish(ev)
    assert await receive(sub, 20) == sent


async def test_every_instance_hears_every_other(shared_buses: BusKit) -> None:
    a, b, c = [await shared_buses.new() for _ in range(3)]
    subs = {bus: bus.subscribe() for bus in (a, b, c)}
    from_a, from_b = event("from a"), event("from b")
    await a.publish(from_a)
    for sub in subs.values():
        assert await sub.get(timeout=WAIT) == from_a
    await b.publish(from_b)
    for sub in subs.values():
        assert await sub.get(timeout=WAIT) == from_b


async def test_own_event_is_delivered_once_not_again_as_its_echo(shared_buses: BusKit) -> None:
    here, there = await shared_buses.new(), await shared_buses.new()
    mine, theirs = here.subscribe(), there.subscribe()
    own, later = event("own"), event("later")
    await here.publish(own)
    # Once the other instance has it, our own echo is on the channel ahead of anything published
    # after; so when ``later`` reaches us, the echo has been seen (and must have been dropped).
    assert await theirs.get(timeout=WAIT) == own
    await there.publish(later)
    assert await receive(mine, 2) == [own, later]


async def test_slow_subscriber_of_remote_events_is_dropped_without_holding_up_the_others(
    shared_buses: BusKit,
) -> None:
    here, there = await shared_buses.new(max_backlog=5), await shared_buses.new()
    slow, fast = here.subscribe(), here.subscribe()
    for _ in range(6):
        ev = event()
        await there.publish(ev)
        assert await fast.get(timeout=WAIT) == ev
    assert await slow.get(timeout=WAIT) is None


# -- Redis: outages and bad input, on a private redis-server the test kills, freezes and restarts --


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """For a state with no event to await (the listener noticing a silent server): a short bounded poll."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_after_redis_restarts_subscribers_resync_and_events_flow_again(redis_kit: RedisKit) -> None:
    here, there = await redis_kit.new(), await redis_kit.new()
    mine, theirs = here.subscribe(), there.subscribe()
    first = event("before the outage")
    await there.publish(first)
    assert await mine.get(timeout=WAIT) == first
    assert await theirs.get(timeout=WAIT) == first

    redis_kit.server.kill()
    during = event("while redis is down")
    await here.publish(during)
    assert await mine.get(timeout=WAIT) == during  # the local path does not need Redis
    redis_kit.server.start()

    # One resync each, and the echo of ``during`` does not come back to its own instance.
    assert is_resync(await mine.get(timeout=WAIT))
    await receive_until(theirs, is_resync)

    from_there, from_here = event("after, from there"), event("after, from here")
    await there.publish(from_there)
    assert await mine.get(timeout=WAIT) == from_there
    await here.publish(from_here)
    assert await mine.get(timeout=WAIT) == from_here
    got = await receive_until(theirs, lambda ev: ev == from_here)
    # ``during`` waited in here's outbox and may reach there late (there then skips it by id).
    assert [ev for ev in got if ev != during] == [from_there, from_here]


async def test_publish_while_redis_is_down_neither_raises_nor_waits(redis_kit: RedisKit) -> None:
    here = await redis_kit.new(max_outbox=10)
    mine = here.subscribe()
    redis_kit.server.kill()
    sent = [event() for _ in range(50)]  # more than the outbox holds
    started = time.monotonic()
    for ev in sent:
        await here.publish(ev)
    assert time.monotonic() - started < 0.5
    assert await receive(mine, 50) == sent
    started = time.monotonic()
    await here.close()
    assert time.monotonic() - started < 3.0
    assert await drain(mine) == []


async def test_bus_opened_while_redis_is_down_starts_and_joins_when_redis_comes(redis_kit: RedisKit) -> None:
    redis_kit.server.kill()
    here = await redis_kit.new()
    assert not here.listening
    mine = here.subscribe()
    local = event("served locally meanwhile")
    await here.publish(local)
    assert await mine.get(timeout=WAIT) == local

    redis_kit.server.start()
    # Other instances may have published while this one was deaf: catch up from the store.
    assert is_resync(await mine.get(timeout=WAIT))
    there = await redis_kit.new()
    ev = event()
    await there.publish(ev)
    assert await mine.get(timeout=WAIT) == ev


async def test_listener_notices_a_silent_redis_and_resyncs_when_it_answers_again(redis_kit: RedisKit) -> None:
    here, there = await redis_kit.new(), await redis_kit.new()
    mine = here.subscribe()
    redis_kit.server.freeze()  # no RST, no EOF: only an unanswered PING tells
    await eventually(lambda: not here.listening)
    redis_kit.server.thaw()
    assert is_resync(await mine.get(timeout=WAIT))
    ev = event()
    await there.publish(ev)
    assert await mine.get(timeout=WAIT) == ev


async def test_listener_survives_malformed_messages(redis_kit: RedisKit) -> None:
    here, there = await redis_kit.new(), await redis_kit.new()
    mine = here.subscribe()
    for junk in (b"not json", b"\xff\xfe", b'{"v": 99}', b'{"v": 1, "origin": "x", "event": {"id": "1"}}'):
        await redis_kit.publish_raw(here.channel, junk)
    ev = event()
    await there.publish(ev)
    assert await mine.get(timeout=WAIT) == ev


def test_channel_prefix_comes_from_the_url_and_is_not_passed_to_redis() -> None:
    from handoff_channel.bus import create_bus
    from handoff_channel.bus.redis import RedisEventBus

    bus = create_bus("redis://:secret@127.0.0.1:6379/2?channel_prefix=acme&socket_keepalive=true")
    assert isinstance(bus, RedisEventBus)
    assert bus.channel == "acme:events"
    assert "channel_prefix" not in bus._url and "socket_keepalive=true" in bus._url
    assert RedisEventBus("redis://127.0.0.1:6379/0").channel == "handoff:events"
    assert RedisEventBus("redis://127.0.0.1/0?channel_prefix=a", prefix="b").channel == "b:events"
