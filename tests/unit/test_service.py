"""The handoff rules, on a real SQLite store and the in-process bus (no Rasa needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest

from handoff_channel.bus import MemoryEventBus
from handoff_channel.errors import (
    AlreadyAssigned,
    ConversationNotFound,
    InvalidPayload,
    InvalidTransition,
    MessageTooLong,
    NotAssignee,
)
from handoff_channel.models import (
    TRANSITIONS,
    Agent,
    Handoff,
    Move,
    OutboxKind,
    Role,
    Status,
    sources_of,
)
from handoff_channel.service import HandoffService
from handoff_channel.settings import Settings
from handoff_channel.store import SqlConversationStore

SARAH = Agent("sarah", "Sarah")
TOM = Agent("tom", "Tom")
BOSS = Agent("boss", "Bea", role="supervisor")


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[HandoffService]:
    store = SqlConversationStore(f"sqlite:///{tmp_path / 'h.db'}")
    await store.open()
    svc = HandoffService(store, MemoryEventBus(), Settings(max_message_chars=50))
    yield svc
    await store.close()


async def queued(service: HandoffService, cid: str = "conv-0001") -> str:
    await service.visitor_message(cid, "I want a human")
    await service.record_handoff(cid, Handoff(reason="explicit_request", priority=2))
    return cid


async def outbox_kinds(service: HandoffService, cid: str) -> list[OutboxKind]:
    return [i.kind for i in await service.store.pending_outbox(cid)]


def test_every_move_has_a_source_and_human_statuses_are_exactly_queued_and_assigned() -> None:
    for move in Move:
        assert sources_of(move), move
    assert {s for s in Status if s.human_owned} == {Status.QUEUED, Status.ASSIGNED}
    assert (Status.RESOLVED, Move.CLAIMED) not in TRANSITIONS


async def test_visitor_turn_goes_to_the_bot_while_the_bot_owns_the_conversation(service: HandoffService) -> None:
    await service.visitor_message("conv-0001", "hello")
    assert await outbox_kinds(service, "conv-0001") == [OutboxKind.TURN]


async def test_visitor_turns_are_only_logged_while_a_human_owns_the_conversation(service: HandoffService) -> None:
    cid = await queued(service)
    await service.store.finish_outbox([i.id for i in await service.store.pending_outbox(cid)])
    for i in range(3):
        await service.visitor_message(cid, f"are you there {i}")
    assert await outbox_kinds(service, cid) == [OutboxKind.LOG] * 3


async def test_exactly_one_of_many_concurrent_claims_wins(service: HandoffService) -> None:
    cid = await queued(service)
    agents = [Agent(f"a{i}", f"A{i}") for i in range(20)]
    results = await asyncio.gather(*(service.claim(cid, a) for a in agents), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyAssigned) for r in results if isinstance(r, Exception))
    conv = await service.store.get_conversation(cid)
    assert conv.status is Status.ASSIGNED and conv.assignee == winners[0].assignee


async def test_claim_tells_the_visitor_who_joined(service: HandoffService) -> None:
    cid = await queued(service)
    await service.claim(cid, SARAH)
    msgs = await service.store.messages(cid)
    assert msgs[-1].role is Role.SYSTEM and msgs[-1].text == "Sarah joined the chat"


async def test_reply_without_claiming_is_refused_and_stores_nothing(service: HandoffService) -> None:
    cid = await queued(service)
    before = len(await service.store.messages(cid))
    with pytest.raises(NotAssignee):
        await service.agent_reply(cid, SARAH, "hi")
    await service.claim(cid, SARAH)
    with pytest.raises(NotAssignee):
        await service.agent_reply(cid, TOM, "hi from tom")
    assert len(await service.store.messages(cid)) == before + 1  # only the "joined" notice


async def test_claim_of_a_resolved_conversation_is_an_invalid_transition(service: HandoffService) -> None:
    cid = await queued(service)
    await service.claim(cid, SARAH)
    await service.resolve(cid, SARAH)
    with pytest.raises(InvalidTransition):
        await service.claim(cid, TOM)


async def test_agent_reply_is_idempotent_on_client_id(service: HandoffService) -> None:
    cid = await queued(service)
    await service.claim(cid, SARAH)
    first = await service.agent_reply(cid, SARAH, "On it", client_id="c-1")
    again = await service.agent_reply(cid, SARAH, "On it", client_id="c-1")
    assert first.id == again.id
    assert [m.text for m in await service.store.messages(cid)].count("On it") == 1


async def test_visitor_retry_with_the_same_message_id_is_stored_once(service: HandoffService) -> None:
    a = await service.visitor_message("conv-0002", "hello", client_id="m-1")
    b = await service.visitor_message("conv-0002", "hello", client_id="m-1")
    assert a.id == b.id
    assert await outbox_kinds(service, "conv-0002") == [OutboxKind.TURN]


async def test_internal_note_is_never_queued_for_the_visitor_or_rasa(service: HandoffService) -> None:
    cid = await queued(service)
    await service.claim(cid, SARAH)
    kinds_before = await outbox_kinds(service, cid)
    note = await service.add_note(cid, SARAH, "customer sounds angry")
    assert note.role is Role.NOTE and not note.role.visible_to_visitor
    assert await outbox_kinds(service, cid) == kinds_before


async def test_hand_back_restores_the_bot_and_queues_the_resume_after_the_records(service: HandoffService) -> None:
    cid = await queued(service)
    await service.claim(cid, SARAH)
    await service.agent_reply(cid, SARAH, "Fixed it")
    conv = await service.hand_back(cid, SARAH, outcome="resolved", note="refund issued", facts={"order_number": "12345"})
    assert conv.status is Status.BOT and conv.assignee is None
    kinds = await outbox_kinds(service, cid)
    assert kinds[-1] is OutboxKind.HANDBACK and OutboxKind.LOG in kinds[:-1]
    handback = (await service.store.pending_outbox(cid))[-1].payload
    assert handback["facts"] == {"order_number": "12345"} and handback["agent_name"] == "Sarah"
    await service.visitor_message(cid, "thanks")
    assert (await outbox_kinds(service, cid))[-1] is OutboxKind.TURN


async def test_only_the_assignee_or_a_supervisor_may_hand_back(service: HandoffService) -> None:
    cid = await queued(service)
    await service.claim(cid, SARAH)
    with pytest.raises(NotAssignee):
        await service.hand_back(cid, TOM)
    conv = await service.hand_back(cid, BOSS)
    assert conv.status is Status.BOT


async def test_bad_input_gets_a_clear_error(service: HandoffService) -> None:
    with pytest.raises(MessageTooLong) as too_long:
        await service.visitor_message("conv-0003", "x" * 51)
    assert "limit is 50" in too_long.value.message
    with pytest.raises(InvalidPayload):
        await service.visitor_message("conv-0003", "   ")
    with pytest.raises(InvalidPayload):
        await service.visitor_message("conv-0003", {"not": "text"})
    cid = await queued(service)
    await service.claim(cid, SARAH)
    with pytest.raises(InvalidPayload):
        await service.hand_back(cid, SARAH, outcome="teleported")
    with pytest.raises(InvalidPayload):
        await service.hand_back(cid, SARAH, facts=["not", "a", "mapping"])
    with pytest.raises(ConversationNotFound):
        await service.claim("no-such-conversation", SARAH)
    assert (await service.store.get_conversation(cid)).status is Status.ASSIGNED


async def test_every_change_reaches_subscribers_in_id_order(service: HandoffService) -> None:
    sub = service.bus.subscribe()
    cid = await queued(service)
    await service.claim(cid, SARAH)
    await service.agent_reply(cid, SARAH, "hello")
    seen = []
    while True:
        try:
            seen.append(await asyncio.wait_for(sub.get(), 0.1))  # type: ignore[attr-defined]
        except asyncio.TimeoutError:
            break
    ids = [e.id for e in seen]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert [e.type for e in seen].count("conversation_updated") == 2
    replayed = await service.store.events_after(0)
    assert [e.id for e in replayed] == ids


async def test_unassigned_view_puts_urgent_first_then_longest_waiting(service: HandoffService) -> None:
    await service.visitor_message("old-normal", "help")
    await service.record_handoff("old-normal", Handoff(reason="explicit_request", priority=2))
    await service.visitor_message("new-urgent", "help")
    await service.record_handoff("new-urgent", Handoff(reason="safety", priority=4))
    await service.visitor_message("new-normal", "help")
    await service.record_handoff("new-normal", Handoff(reason="explicit_request", priority=2))
    order = [c.id for c in await service.conversations("unassigned", SARAH)]
    assert order == ["new-urgent", "old-normal", "new-normal"]
