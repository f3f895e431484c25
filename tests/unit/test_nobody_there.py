"""When nobody can take over: business hours, the desk status the bot is told, visitors nobody
claimed, a waiting visitor's choices, offline tickets, escalation and team transfer. On a real
SQLite store, the in-process bus and a fake clock (no sleeps)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import pytest

from handoff_channel.errors import (
    Forbidden,
    InvalidPayload,
    NoSupervisor,
    NotFound,
    TicketAlreadyDone,
)
from handoff_channel.gateway.webhooks import webhook_payload
from handoff_channel.hours import BusinessHours
from handoff_channel.models import Agent, OutboxKind, Role, Status, VisitorChoice
from handoff_channel.service import HandoffService

from .conftest import FakeClock
from .test_queue_routing import agent, ask


def at(text: str) -> float:
    """A UTC time such as '2026-12-07 10:30' (a Monday) as a timestamp."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).timestamp()


async def outbox(svc: HandoffService, cid: str) -> list[tuple[OutboxKind, Any]]:
    return [(i.kind, i.payload) for i in await svc.store.pending_outbox(cid)]


# -- business hours -----------------------------------------------------------------------------

def test_business_hours_are_open_inside_their_spans_only() -> None:
    hours = BusinessHours.parse("mon-fri 09:00-18:00; sat 10:00-14:00", "UTC")
    assert hours is not None
    assert hours.is_open(at("2026-12-07 09:00"))  # Monday, opening minute
    assert not hours.is_open(at("2026-12-07 18:00"))  # closing minute
    assert not hours.is_open(at("2026-12-07 08:59"))
    assert hours.is_open(at("2026-12-12 13:59"))  # Saturday
    assert not hours.is_open(at("2026-12-13 12:00"))  # Sunday
    assert hours.describe() == "Mon-Fri 09:00-18:00; Sat 10:00-14:00 (UTC)"


def test_business_hours_use_their_time_zone() -> None:
    berlin = BusinessHours.parse("mon-fri 09:00-17:00", "Europe/Berlin")
    assert berlin is not None
    assert not berlin.is_open(at("2026-12-07 07:30"))  # 08:30 in Berlin (UTC+1 in winter)
    assert berlin.is_open(at("2026-12-07 08:30"))  # 09:30 in Berlin


def test_empty_business_hours_mean_always_open_and_typos_are_explained() -> None:
    assert BusinessHours.parse("  ", "UTC") is None
    for bad, words in [("mon-fri 9-18", "should look like"), ("mun-fri 09:00-18:00", "days are"),
                       ("mon 18:00-09:00", "end after it starts"), ("mon 09:00-25:00", "not a time of day")]:
        with pytest.raises(ValueError, match=words):
            BusinessHours.parse(bad, "UTC")
    with pytest.raises(ValueError, match="time zone"):
        BusinessHours.parse("mon 09:00-10:00", "Mars/Olympus")


# -- the desk status the bot gets with every turn ----------------------------------------------

async def test_the_bot_is_told_nobody_is_available_when_every_agent_is_away(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah", available=False)
    desk = await svc.desk_status()
    assert desk == {"open": True, "agents_available": 0, "why": "no_agents", "hours": None}
    await svc.set_availability(sarah, "available")  # the bot knows at its very next turn
    assert (await svc.desk_status())["why"] is None
    await svc.set_availability(sarah, "busy")
    assert (await svc.desk_status())["why"] == "no_agents"


async def test_outside_business_hours_the_desk_is_closed_even_with_agents_online(
    make_service: Callable[..., HandoffService], clock: FakeClock
) -> None:
    clock.t = at("2026-12-13 12:00")  # a Sunday
    svc = make_service(business_hours="mon-fri 09:00-18:00", timezone="UTC")
    await agent(svc, "sarah")
    desk = await svc.desk_status()
    assert desk["why"] == "closed" and desk["open"] is False and desk["agents_available"] == 1
    assert desk["hours"] == "Mon-Fri 09:00-18:00 (UTC)"
    clock.t = at("2026-12-14 09:30")
    assert (await svc.desk_status())["why"] is None


# -- a visitor nobody claims --------------------------------------------------------------------

async def test_a_visitor_nobody_claims_is_offered_a_choice_once_and_agents_are_alerted_again(
    make_service: Callable[..., HandoffService], clock: FakeClock
) -> None:
    svc = make_service(unclaimed_after_s=120)
    await agent(svc, "sarah")
    await ask(svc, "c1")
    clock.advance(119)
    assert await svc.sweep_unclaimed() == []
    sub = svc.bus.subscribe()
    clock.advance(1)
    assert await svc.sweep_unclaimed() == ["c1"]
    offer = [m for m in await svc.store.messages("c1") if m.role is Role.SYSTEM][-1]
    assert "keep waiting" in offer.text and "leave a message" in offer.text
    assert [r["payload"] for r in (offer.payload or {})["quick_replies"]] == [
        "/handoff_keep_waiting", "/handoff_leave_message", "/handoff_cancel"]
    events = [await sub.get(1), await sub.get(1)]
    alert = next(e for e in events if e is not None and e.type == "conversation_updated")
    assert alert.data["timeline"]["kind"] == "unclaimed" and alert.data["timeline"]["detail"]["waited_s"] == 120
    clock.advance(600)
    assert await svc.sweep_unclaimed() == []  # once per wait
    assert (await svc.store.get_conversation("c1")).status is Status.QUEUED
    await sub.close()


async def test_claimed_conversations_are_not_offered_and_a_new_wait_gets_a_new_offer(
    make_service: Callable[..., HandoffService], clock: FakeClock
) -> None:
    svc = make_service(unclaimed_after_s=60)
    sarah = await agent(svc, "sarah")
    await ask(svc, "c1")
    await ask(svc, "c2")
    await svc.claim("c2", sarah)
    clock.advance(61)
    assert await svc.sweep_unclaimed() == ["c1"]
    await svc.claim("c1", sarah)
    await svc.hand_back("c1", sarah)
    clock.advance(1)
    await svc.record_handoff("c1", (await svc.store.get_conversation("c1")).handoff)  # type: ignore[arg-type]
    clock.advance(30)
    assert await svc.sweep_unclaimed() == []
    clock.advance(31)
    assert await svc.sweep_unclaimed() == ["c1"]


async def test_no_offer_when_the_unclaimed_time_is_zero(make_service: Callable[..., HandoffService], clock: FakeClock) -> None:
    svc = make_service(unclaimed_after_s=0)
    await ask(svc, "c1")
    clock.advance(10_000)
    assert await svc.sweep_unclaimed() == []


# -- a waiting visitor's choices ---------------------------------------------------------------

async def test_the_queue_notice_offers_to_stop_waiting(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    await ask(svc, "c1")
    notice = [m for m in await svc.store.messages("c1") if m.role is Role.SYSTEM][-1]
    assert notice.text.startswith("You're number 1")
    assert (notice.payload or {})["quick_replies"][0]["payload"] == "/handoff_cancel"


async def test_never_mind_takes_a_waiting_visitor_back_to_the_bot(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    await ask(svc, "c1")
    assert await svc.visitor_choice("c1", VisitorChoice.CANCEL) is True
    conv = await svc.store.get_conversation("c1")
    assert conv.status is Status.BOT
    entry = (await svc.store.timeline("c1"))[-1]
    assert entry.kind == "cancelled" and entry.actor == "visitor" and entry.detail["choice"] == "cancel"
    kind, payload = (await outbox(svc, "c1"))[-1]
    assert kind is OutboxKind.HANDBACK and payload["outcome"] == "cancelled"
    assert "c1" not in [c.id for c in await svc.conversations("unassigned", None)]


async def test_leaving_a_message_ends_the_wait_and_tells_the_bot_to_take_it(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    await ask(svc, "c1")
    assert await svc.visitor_choice("c1", VisitorChoice.LEAVE_MESSAGE) is True
    assert (await svc.store.get_conversation("c1")).status is Status.BOT
    assert (await outbox(svc, "c1"))[-1][1]["outcome"] == "leave_message"


async def test_keep_waiting_keeps_the_place_in_the_queue(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    await ask(svc, "c1")
    assert await svc.visitor_choice("c1", VisitorChoice.KEEP_WAITING) is True
    assert (await svc.store.get_conversation("c1")).status is Status.QUEUED
    last = (await svc.store.messages("c1"))[-1]
    assert last.role is Role.SYSTEM and "still in the queue" in last.text
    assert (await svc.store.timeline("c1"))[-1].kind == "keep_waiting"


async def test_choices_are_ignored_once_an_agent_has_the_visitor(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    await ask(svc, "c1")
    await svc.claim("c1", sarah)
    for choice in VisitorChoice:
        assert await svc.visitor_choice("c1", choice) is False
    conv = await svc.store.get_conversation("c1")
    assert conv.status is Status.ASSIGNED and conv.assignee == "sarah"


# -- escalation and team transfer ---------------------------------------------------------------

async def test_escalation_goes_to_the_least_loaded_available_supervisor_with_the_note(
    make_service: Callable[..., HandoffService]
) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    boss = await agent(svc, "boss", role="supervisor")
    await agent(svc, "chief", role="supervisor", available=False)
    await ask(svc, "c0")
    await svc.claim("c0", boss)  # boss has one already, but chief is away
    await ask(svc, "c1")
    await svc.claim("c1", sarah)
    conv = await svc.escalate("c1", sarah, "asks for compensation")
    assert conv.assignee == "boss" and conv.status is Status.ASSIGNED
    entry = (await svc.store.timeline("c1"))[-1]
    assert entry.kind == "escalated" and entry.detail["from_agent"] == "sarah" and entry.detail["to_agent"] == "boss"
    msgs = await svc.store.messages("c1")
    assert [m.text for m in msgs if m.role is Role.SYSTEM][-1] == "Boss joined the chat"
    assert msgs[-1].role is Role.NOTE and "asks for compensation" in msgs[-1].text


async def test_escalation_without_a_supervisor_is_a_clear_conflict(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    await ask(svc, "c1")
    await svc.claim("c1", sarah)
    with pytest.raises(NoSupervisor) as err:
        await svc.escalate("c1", sarah)
    assert err.value.status == 409 and "supervisor" in err.value.message
    assert (await svc.store.get_conversation("c1")).assignee == "sarah"


async def test_transfer_to_a_team_puts_the_conversation_back_in_the_queue_for_that_team(
    make_service: Callable[..., HandoffService]
) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    await agent(svc, "bill", teams=("billing",))
    await ask(svc, "c1")
    await svc.claim("c1", sarah)
    conv = await svc.transfer("c1", sarah, team="Billing", note="double charge")
    assert conv.status is Status.QUEUED and conv.assignee is None
    assert conv.handoff is not None and conv.handoff.team == "billing"
    entry = (await svc.store.timeline("c1"))[-1]
    assert entry.kind == "team_transferred" and entry.detail["team"] == "billing"
    texts = [m.text for m in await svc.store.messages("c1") if m.role is Role.SYSTEM]
    assert any("billing team" in t for t in texts)
    with pytest.raises(InvalidPayload, match="No agent is in team"):
        await svc.transfer("c1", Agent("boss", "Bea", role="supervisor"), team="legal")
    with pytest.raises(Forbidden):  # waiting: only a supervisor moves it without claiming
        await svc.transfer("c1", sarah, team="billing")


async def test_auto_routing_gives_a_team_transfer_to_that_team(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service(routing="auto")
    sarah = await agent(svc, "sarah")
    await ask(svc, "c1")
    assert (await svc.store.get_conversation("c1")).assignee == "sarah"
    await agent(svc, "bill", teams=("billing",))
    conv = await svc.transfer("c1", sarah, team="billing")
    assert conv.status is Status.QUEUED
    after = await svc.store.get_conversation("c1")
    assert after.status is Status.ASSIGNED and after.assignee == "bill"


async def test_the_directory_lists_agents_and_teams_with_who_is_available(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    await agent(svc, "sarah", teams=("billing", "sales"))
    await agent(svc, "tom", teams=("billing",), available=False)
    found = await svc.directory()
    assert {a["username"] for a in found["agents"]} == {"sarah", "tom"}
    assert found["teams"] == [{"name": "billing", "available": 1, "agents": 2},
                              {"name": "sales", "available": 1, "agents": 1}]


# -- offline tickets -----------------------------------------------------------------------------

TICKET = {"key": "a" * 32, "email": "jo@example.com", "issue": "My parcel arrived broken",
          "why": "no_agents", "handoff": {"reason": "explicit_request", "priority": 2, "team": None,
                                          "summary": {"headline": "Parcel arrived broken"}}}


async def test_an_offline_ticket_lands_in_the_inbox_once_and_can_be_marked_done(
    make_service: Callable[..., HandoffService]
) -> None:
    svc = make_service()
    sarah = await agent(svc, "sarah")
    await svc.visitor_message("c1", "hello")
    sub = svc.bus.subscribe()
    ticket = await svc.record_ticket("c1", TICKET)
    assert ticket is not None and ticket.status == "open"
    event = await sub.get(1)
    assert event is not None and event.type == "ticket_created"
    assert event.data["ticket"]["email"] == "jo@example.com"
    assert event.data["ticket"]["headline"] == "Parcel arrived broken"
    again = await svc.record_ticket("c1", TICKET)  # the bot's retry
    assert again is not None and again.id == ticket.id
    assert [t.id for t in await svc.tickets("open")] == [ticket.id]
    assert (await svc.store.timeline("c1"))[-1].kind == "ticket_created"
    done = await svc.close_ticket(ticket.id, sarah, "emailed a return label")
    assert done.status == "done" and done.closed_by_name == "Sarah" and done.note == "emailed a return label"
    assert await svc.tickets("open") == [] and [t.id for t in await svc.tickets("done")] == [ticket.id]
    with pytest.raises(TicketAlreadyDone):
        await svc.close_ticket(ticket.id, sarah)
    with pytest.raises(NotFound):
        await svc.close_ticket(9999, sarah)
    with pytest.raises(InvalidPayload):
        await svc.tickets("archived")
    await sub.close()


async def test_a_malformed_ticket_is_dropped_whole(make_service: Callable[..., HandoffService]) -> None:
    svc = make_service()
    await svc.visitor_message("c1", "hello")
    for bad in [{**TICKET, "email": ""}, {**TICKET, "key": "../x"}, {**TICKET, "issue": None}]:
        assert await svc.record_ticket("c1", bad) is None
    assert await svc.tickets("all") == []


def test_tickets_and_the_new_moves_become_webhook_events() -> None:
    from handoff_channel.models import Event

    created = webhook_payload(Event(1, "ticket_created", "c1", {"ticket": {"id": 3}}, 0.0))
    assert created is not None and created["event"] == "ticket.created" and created["ticket"] == {"id": 3}
    for kind, name in [("cancelled", "handoff.cancelled"), ("escalated", "handoff.escalated"),
                       ("unclaimed", "handoff.unclaimed"), ("team_transferred", "handoff.transferred")]:
        found = webhook_payload(Event(2, "conversation_updated", "c1", {"timeline": {"kind": kind}}, 0.0))
        assert found is not None and found["event"] == name
