"""Availability, capacity, priority, routing, transfer and what a waiting visitor is told: on a real
SQLite store, the in-process bus and a fake clock (no sleeps)."""

from __future__ import annotations

from typing import Callable

import pytest

from handoff_channel.errors import Forbidden, InvalidPayload, InvalidTransition, NotAssignee, NotFound
from handoff_channel.models import Agent, Availability, Handoff, Move, Role, Status
from handoff_channel.service import HandoffService, wait_notice

from .conftest import FakeClock

BOSS = Agent("boss", "Bea", role="supervisor")


async def agent(svc: HandoffService, username: str, *, capacity: int = 5, teams: tuple[str, ...] = (),
                available: bool = True, role: str = "agent") -> Agent:
    await svc.store.open()
    a = await svc.store.create_agent(username, username.title(), "hash", role, capacity=capacity, teams=teams)
    if available:
        a = await svc.set_availability(a, "available")
    return a


async def ask(svc: HandoffService, cid: str, *, priority: int = 2, team: str | None = None,
              tier: str | None = None) -> None:
    await svc.store.open()
    meta = {"customData": {"tier": tier}} if tier else None
    await svc.visitor_message(cid, "I want a human", metadata=meta)
    await svc.record_handoff(cid, Handoff(reason="explicit_request", priority=priority, team=team))


# -- availability ------------------------------------------------------------------------------

async def test_an_agent_whose_inbox_stops_sending_heartbeats_becomes_away(make_service: Callable[..., HandoffService], clock: FakeClock) -> None:
    svc = make_service(heartbeat_timeout_s=60)
    sarah = await agent(svc, "sarah")
    tom = await agent(svc, "tom")
    clock.advance(45)
    await svc.heartbeat(tom)  # tom's inbox is still open
    clock.advance(30)
    gone = await svc.sweep_silent_agents()
    assert [a.username for a in gone] == ["sarah"]
    assert (await svc.store.get_agent("sarah")).availability is Availability.AWAY  # type: ignore[union-attr]
    assert (await svc.store.get_agent("tom")).availability is Availability.AVAILABLE  # type: ignore[union-attr]
    assert await svc.sweep_silent_agents() == []  # already away: nothing to do
    assert sarah.username == "sarah"


async def test_heartbeats_are_written_at_most_every_few_seconds_per_agent(make_service: Callable[..., HandoffService], clock: FakeClock) -> None:
    svc = make_service(heartbeat_timeout_s=60)
    sarah = await agent(svc, "sarah")
    first = (await svc.store.get_agent("sarah")).last_seen_at  # type: ignore[union-attr]
    clock.advance(5)
    await svc.heartbeat(sarah)
    assert (await svc.store.get_agent("sarah")).last_seen_at == first  # type: ignore[union-attr]
    clock.advance(10)
    await svc.heartbeat(sarah)
    assert (await svc.store.get_agent("sarah")).last_seen_at == clock.t  # type: ignore[union-attr]


async def test_unknown_availability_is_refused(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    with pytest.raises(InvalidPayload):
        await svc.set_availability(sarah, "on holiday")


async def test_only_a_supervisor_sets_capacity_and_bad_values_are_refused(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    boss = await agent(svc, "boss", role="supervisor")
    with pytest.raises(Forbidden):
        await svc.update_agent(sarah, "sarah", capacity=9)
    for bad in (-1, 101, "3", 2.5, True):
        with pytest.raises(InvalidPayload):
            await svc.update_agent(boss, "sarah", capacity=bad)
    with pytest.raises(InvalidPayload):
        await svc.update_agent(boss, "sarah")
    with pytest.raises(NotFound):
        await svc.update_agent(boss, "nobody", capacity=3)
    updated = await svc.update_agent(boss, "sarah", capacity=2, teams="Billing, tech")
    assert updated.capacity == 2 and updated.teams == ("billing", "tech")


# -- priority ---------------------------------------------------------------------------------

async def test_vip_customers_get_one_more_priority_capped_at_urgent(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    await ask(svc, "vip-normal", priority=2, tier="VIP")
    await ask(svc, "vip-urgent", priority=4, tier="vip")
    await ask(svc, "plain", priority=2, tier="gold")
    prio = {c.id: c.handoff.priority for c in await svc.conversations("unassigned", None) if c.handoff}
    assert prio == {"vip-normal": 3, "vip-urgent": 4, "plain": 2}
    rows = {c.id: c.summary_dict() for c in await svc.conversations("unassigned", None)}
    assert rows["vip-urgent"]["urgent"] is True and rows["vip-normal"]["urgent"] is False


async def test_a_long_wait_raises_a_conversation_above_newer_ones_of_its_severity(make_service: Callable[..., HandoffService], clock: FakeClock) -> None:
    svc = make_service(priority_wait_s=300)
    await ask(svc, "waiting")
    clock.advance(200)
    await ask(svc, "high", priority=3)
    assert [c.id for c in await svc.conversations("unassigned", None)] == ["high", "waiting"]
    clock.advance(100)  # "waiting" has now waited 300 s: 2 + 1 = 3, and it came first
    order = await svc.conversations("unassigned", None)
    assert [c.id for c in order] == ["waiting", "high"]
    assert [svc.queue_priority(c) for c in order] == [3, 3]


# -- what the visitor is told while waiting ----------------------------------------------------

def test_wait_notice_says_nothing_about_time_without_recent_waits() -> None:
    assert wait_notice(2, None) == "You're number 2 in the queue."
    assert wait_notice(2, 170) == "You're number 2 in the queue. Expected wait: about 3 minutes."
    assert wait_notice(1, 10) == "You're number 1 in the queue. Expected wait: about 1 minute."


async def test_a_queued_visitor_is_told_their_position_and_the_median_recent_wait(make_service: Callable[..., HandoffService], clock: FakeClock) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    await ask(svc, "first")
    first = (await svc.store.messages("first"))[-1]
    assert first.role is Role.SYSTEM and first.text == "You're number 1 in the queue."
    assert first.payload is not None
    assert first.payload["handoff"] == {"status": "queued", "queue_position": 1, "expected_wait_s": None}
    clock.advance(170)
    await svc.claim("first", sarah)  # one recent wait: 170 s
    await ask(svc, "second")
    await ask(svc, "third")
    third = (await svc.store.messages("third"))[-1]
    assert third.text == "You're number 2 in the queue. Expected wait: about 3 minutes."
    assert third.payload is not None and third.payload["handoff"]["expected_wait_s"] == 170
    assert Role.SYSTEM.visible_to_visitor


async def test_no_queue_notice_once_an_agent_has_claimed_the_conversation(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    await svc.visitor_message("c1", "I want a human")
    await svc.store.transition("c1", Move.HANDOFF_REQUESTED, "bot", handoff=Handoff(reason="explicit_request"))
    queued_then = await svc.store.get_conversation("c1")
    await svc.claim("c1", sarah)  # the agent is faster than the notice
    await svc._tell_queue_position(queued_then)
    texts = [m.text for m in await svc.store.messages("c1")]
    assert texts[-1] == "Sarah joined the chat" and not any("in the queue" in t for t in texts)


async def test_expected_wait_is_the_median_of_the_last_n_claim_waits(make_service: Callable[..., HandoffService], clock: FakeClock) -> None:
    svc = make_service(wait_samples=3)
    sarah = await agent(svc, "sarah")
    for cid, wait in (("c1", 3000), ("c2", 60), ("c3", 600), ("c4", 240)):
        await ask(svc, cid)
        clock.advance(wait)
        await svc.claim(cid, sarah)
    assert await svc.store.recent_waits(3) == [240, 600, 60]  # c1's 50 minutes is too old to count
    await ask(svc, "c5")
    assert (await svc.store.messages("c5"))[-1].text == "You're number 1 in the queue. Expected wait: about 4 minutes."


# -- routing ----------------------------------------------------------------------------------

async def test_manual_routing_leaves_conversations_queued(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    await agent(svc, "sarah")
    await ask(svc, "c1")
    assert (await svc.store.get_conversation("c1")).status is Status.QUEUED


async def test_auto_routing_assigns_to_the_least_loaded_available_agent_with_free_capacity(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service(routing="auto")
    await agent(svc, "sarah", capacity=1)
    await agent(svc, "tom", capacity=2)
    await agent(svc, "zed", available=False)
    busy = await agent(svc, "bob")
    await svc.set_availability(busy, "busy")
    for cid in ("c1", "c2", "c3", "c4"):
        await ask(svc, cid)
    got = {cid: (await svc.store.get_conversation(cid)).assignee for cid in ("c1", "c2", "c3", "c4")}
    assert got == {"c1": "sarah", "c2": "tom", "c3": "tom", "c4": None}
    c1 = await svc.store.timeline("c1")
    assert c1[-1].kind == "claimed" and c1[-1].detail["auto"] is True
    c4 = (await svc.store.messages("c4"))[-1]
    assert c4.text.startswith("You're number 1 in the queue.")


async def test_auto_routing_assigns_waiting_conversations_when_capacity_frees_or_an_agent_arrives(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service(routing="auto")
    sarah = await agent(svc, "sarah", capacity=1)
    await ask(svc, "c1")
    await ask(svc, "c2", priority=3)
    await ask(svc, "c3")
    assert (await svc.store.get_conversation("c2")).status is Status.QUEUED
    await svc.resolve("c1", sarah)
    assert (await svc.store.get_conversation("c2")).assignee == "sarah"  # most urgent first
    tom = await agent(svc, "tom", available=False)
    await svc.set_availability(tom, "available")
    assert (await svc.store.get_conversation("c3")).assignee == "tom"


async def test_auto_routing_keeps_a_team_conversation_for_that_team(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service(routing="auto")
    await agent(svc, "sarah")
    await agent(svc, "tom", teams=("billing",), available=False)
    await ask(svc, "refund", team="Billing")
    await ask(svc, "anything", team="no-such-team")
    assert (await svc.store.get_conversation("refund")).status is Status.QUEUED  # billing is away
    assert (await svc.store.get_conversation("anything")).assignee == "sarah"  # nobody has that team
    tom = await svc.store.get_agent("tom")
    assert tom is not None
    await svc.set_availability(tom, "available")
    assert (await svc.store.get_conversation("refund")).assignee == "tom"


async def test_an_agent_that_went_away_gets_nothing_routed(make_service: Callable[..., HandoffService], clock: FakeClock) -> None:
    svc = make_service(routing="auto", heartbeat_timeout_s=60)
    await agent(svc, "sarah")
    clock.advance(61)
    await svc.sweep_silent_agents()
    await ask(svc, "c1")
    assert (await svc.store.get_conversation("c1")).status is Status.QUEUED


# -- transfer ---------------------------------------------------------------------------------

async def test_transfer_passes_the_conversation_with_a_note_and_tells_the_visitor(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    await agent(svc, "tom")
    await ask(svc, "c1")
    await svc.claim("c1", sarah)
    conv = await svc.transfer("c1", sarah, "tom", "needs a refund over 100 EUR")
    assert conv.status is Status.ASSIGNED and conv.assignee == "tom" and conv.assignee_name == "Tom"
    entry = (await svc.store.timeline("c1"))[-1]
    assert entry.kind == Move.TRANSFERRED.value
    assert entry.detail["note"] == "needs a refund over 100 EUR" and entry.detail["from_agent"] == "sarah"
    msgs = await svc.store.messages("c1")
    system = [m for m in msgs if m.role is Role.SYSTEM]
    assert system[-1].text == "Tom joined the chat"
    assert msgs[-1].role is Role.NOTE and "needs a refund" in msgs[-1].text
    with pytest.raises(NotAssignee):
        await svc.agent_reply("c1", sarah, "still me")
    await svc.agent_reply("c1", Agent("tom", "Tom"), "Tom here")


async def test_transfer_errors(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    tom = await agent(svc, "tom")
    await agent(svc, "boss", role="supervisor")
    await ask(svc, "c1")
    with pytest.raises(InvalidTransition):  # queued: claim it first
        await svc.transfer("c1", sarah, "tom")
    await svc.claim("c1", sarah)
    with pytest.raises(NotFound):
        await svc.transfer("c1", sarah, "nobody")
    with pytest.raises(InvalidPayload):
        await svc.transfer("c1", sarah, 42)
    with pytest.raises(InvalidPayload):
        await svc.transfer("c1", sarah, "sarah")
    with pytest.raises(NotAssignee):
        await svc.transfer("c1", tom, "tom")
    conv = await svc.transfer("c1", BOSS, "tom")  # a supervisor may move anyone's conversation
    assert conv.assignee == "tom"


# -- supervisors ------------------------------------------------------------------------------

async def test_supervisors_see_every_agents_status_load_capacity_and_the_queue_depth(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah", capacity=3)
    await agent(svc, "tom", available=False)
    boss = await agent(svc, "boss", role="supervisor")
    await ask(svc, "c1")
    await ask(svc, "c2", priority=4)
    await ask(svc, "c3")
    await svc.claim("c1", sarah)
    with pytest.raises(Forbidden):
        await svc.agents_overview(sarah)
    view = await svc.agents_overview(boss)
    by_name = {a["username"]: a for a in view["agents"]}
    assert by_name["sarah"]["load"] == 1 and by_name["sarah"]["capacity"] == 3
    assert by_name["sarah"]["availability"] == "available" and by_name["tom"]["availability"] == "away"
    assert by_name["tom"]["load"] == 0
    assert view["queue_depth"] == 2 and view["urgent_queued"] == 1 and view["routing"] == "manual"
