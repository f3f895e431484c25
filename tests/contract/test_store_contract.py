"""One contract for every store adapter: the embedded SQLite file and PostgreSQL.

PostgreSQL comes from HANDOFF_TEST_PG_URL (scripts/services.sh starts it and prints the URL); each
test gets a database of its own. Without the URL these tests fail: production mode is part of the
product, so a missing service is an error, never a skip."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from handoff_channel.errors import (
    AlreadyAssigned,
    BackendUnavailable,
    InvalidTransition,
    NotFound,
)
from handoff_channel.models import Availability, Handoff, Move, OutboxKind, Role, Status
from handoff_channel.store import SqlConversationStore
from handoff_channel.store.migrate import VERSION_TABLE, current_revision, head_revision
from handoff_channel.store.sql import schema


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlConversationStore]:
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = SqlConversationStore(url)
    await s.open()
    yield s
    await s.close()


async def queued(store: SqlConversationStore, cid: str) -> None:
    await store.get_or_create_conversation(cid)
    await store.transition(cid, Move.HANDOFF_REQUESTED, "bot", handoff=Handoff(reason="explicit_request"))


async def test_migrations_build_exactly_the_schema_the_code_uses(store: SqlConversationStore) -> None:
    engine = store._engine
    assert engine is not None
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), schema)
    assert diff == []


async def test_opening_twice_is_harmless(store: SqlConversationStore) -> None:
    again = SqlConversationStore(store.url)
    await again.open()
    assert (await again.get_or_create_conversation("c-1")).status is Status.BOT
    await again.close()


async def test_concurrent_first_messages_create_one_conversation_with_gapless_seqs(store: SqlConversationStore) -> None:
    await asyncio.gather(*(store.get_or_create_conversation("c-1") for _ in range(10)))
    results = await asyncio.gather(*(store.add_message("c-1", Role.VISITOR, f"m{i}") for i in range(20)))
    seqs = sorted(m.seq for m, _ in results)
    assert seqs == list(range(1, 21))
    assert [m.seq for m in await store.messages("c-1")] == list(range(1, 21))


async def test_a_client_id_is_stored_once_even_when_retried_concurrently(store: SqlConversationStore) -> None:
    await store.get_or_create_conversation("c-1")
    results = await asyncio.gather(*(store.add_message("c-1", Role.VISITOR, "hi", client_id="m-1") for _ in range(8)))
    assert len({m.id for m, _ in results}) == 1
    assert sum(1 for _, ev in results if ev is not None) == 1
    assert len(await store.messages("c-1")) == 1


async def test_exactly_one_concurrent_claim_wins(store: SqlConversationStore) -> None:
    await queued(store, "c-1")
    results = await asyncio.gather(
        *(store.transition("c-1", Move.CLAIMED, f"agent{i}") for i in range(30)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyAssigned) for r in results if isinstance(r, BaseException))
    with pytest.raises(InvalidTransition):
        await store.transition("c-1", Move.HANDOFF_REQUESTED, "bot", handoff=Handoff(reason="x"))


async def test_feed_ids_are_strictly_increasing_and_replayable_under_concurrent_writers(store: SqlConversationStore) -> None:
    for i in range(5):
        await store.get_or_create_conversation(f"c-{i}")
    start = await store.last_event_id()
    results = await asyncio.gather(*(store.add_message(f"c-{i % 5}", Role.VISITOR, f"m{i}") for i in range(40)))
    ids = sorted(ev.id for _, ev in results if ev is not None)
    replay = await store.events_after(start)
    assert [e.id for e in replay] == ids and len(ids) == 40
    assert [e.id for e in await store.events_after(ids[19])] == ids[20:]


async def test_the_outbox_keeps_order_and_forgets_finished_items(store: SqlConversationStore) -> None:
    await store.get_or_create_conversation("c-1")
    for i in range(3):
        await store.add_message("c-1", Role.VISITOR, f"m{i}", route=lambda _c: OutboxKind.TURN)
    items = await store.pending_outbox("c-1")
    assert [i.kind for i in items] == [OutboxKind.TURN] * 3
    assert [i.payload["message_id"] for i in items] == sorted(i.payload["message_id"] for i in items)
    await store.finish_outbox([items[0].id])
    assert [i.id for i in await store.pending_outbox("c-1")] == [i.id for i in items[1:]]
    assert await store.conversations_with_pending_outbox() == ["c-1"]


async def test_outbox_work_reads_the_conversation_items_and_messages_together(store: SqlConversationStore) -> None:
    assert await store.outbox_work("c-1") == (None, [], {})
    await store.get_or_create_conversation("c-1")
    sent = [(await store.add_message("c-1", Role.VISITOR, f"m{i}", route=lambda _c: OutboxKind.LOG))[0]
            for i in range(3)]
    conv, items, messages = await store.outbox_work("c-1")
    assert conv is not None and conv.id == "c-1" and conv.message_count == 3
    assert [i.id for i in items] == [i.id for i in await store.pending_outbox("c-1")]
    assert [messages[i.payload["message_id"]] for i in items] == sent


async def test_the_feed_event_of_a_message_shows_the_conversation_after_it(store: SqlConversationStore) -> None:
    await store.get_or_create_conversation("c-1")
    await store.add_message("c-1", Role.VISITOR, "first")
    msg, ev = await store.add_message("c-1", Role.VISITOR, "second " * 60)
    assert ev is not None
    stored = await store.get_conversation("c-1")
    assert ev.data["conversation"] == stored.summary_dict()
    assert ev.data["conversation"]["message_count"] == msg.seq == 2
    _note, ev = await store.add_message("c-1", Role.NOTE, "internal")
    assert ev is not None and ev.data["conversation"] == (await store.get_conversation("c-1")).summary_dict()


async def test_delivery_marks_of_several_conversations_only_move_forward(store: SqlConversationStore) -> None:
    for cid in ("c-1", "c-2"):
        await store.get_or_create_conversation(cid)
    await store.mark_delivered_many({"c-1": 3, "c-2": 5})
    await store.mark_delivered_many({"c-1": 2, "c-2": 6})
    assert [(await store.get_conversation(c)).visitor_delivered_seq for c in ("c-1", "c-2")] == [3, 6]


async def test_an_outbox_lease_is_exclusive_until_it_expires(store: SqlConversationStore) -> None:
    await store.get_or_create_conversation("c-1")
    await store.add_message("c-1", Role.VISITOR, "m", route=lambda _c: OutboxKind.TURN)
    got = await asyncio.gather(*(store.acquire_lease("c-1", f"gw{i}", 30) for i in range(6)))
    assert got.count(True) == 1
    owner = f"gw{got.index(True)}"
    assert await store.acquire_lease("c-1", owner, 30)  # renewal
    import time
    assert await store.conversations_with_pending_outbox(exclude_leased_at=time.time()) == []
    await store.release_lease("c-1", owner)
    assert await store.acquire_lease("c-1", "gw-other", 0.01)
    await asyncio.sleep(0.05)
    assert await store.acquire_lease("c-1", owner, 30)  # the other one's lease expired


async def test_agents_sessions_and_canned_responses(store: SqlConversationStore) -> None:
    await store.create_agent("sarah", "Sarah", "hash")
    found = await store.agent_credentials("sarah")
    assert found is not None and found[1] == "hash"
    await store.create_session("tok", "sarah", expires_at=2e9)
    assert (await store.session_agent("tok", now_=1e9)) is not None
    assert (await store.session_agent("tok", now_=3e9)) is None
    item = await store.add_canned_response("refund", "Your refund is on its way.", "sarah")
    assert [c.shortcut for c in await store.canned_responses()] == ["refund"]
    await store.delete_canned_response(item.id)
    assert await store.canned_responses() == []


async def test_agent_capacity_teams_heartbeats_loads_and_waits(store: SqlConversationStore) -> None:
    await store.create_agent("sarah", "Sarah", "hash", capacity=2, teams=["billing", "tech"])
    await store.create_agent("tom", "Tom", "hash")
    for name in ("sarah", "tom"):
        await store.set_availability(name, Availability.AVAILABLE)
    sarah = await store.get_agent("sarah")
    assert sarah is not None and sarah.capacity == 2 and sarah.teams == ("billing", "tech")
    assert (await store.update_agent("tom", capacity=9, teams=["sales"])).capacity == 9
    with pytest.raises(NotFound):
        await store.update_agent("nobody", capacity=1)
    await store.touch_agent("sarah", 1000.0)
    await store.touch_agent("tom", 1100.0)
    assert [a.username for a in await store.mark_silent_agents_away(1050.0)] == ["sarah"]
    assert (await store.get_agent("sarah")).availability is Availability.AWAY  # type: ignore[union-attr]
    assert (await store.get_agent("tom")).availability is Availability.AVAILABLE  # type: ignore[union-attr]
    await queued(store, "c-1")
    await queued(store, "c-2")
    await store.transition("c-1", Move.CLAIMED, "tom", actor_name="Tom")
    await store.transition("c-1", Move.TRANSFERRED, "tom", assign_to=("sarah", "Sarah"))
    await store.transition("c-2", Move.CLAIMED, "tom", actor_name="Tom")
    assert await store.agent_loads() == {"sarah": 1, "tom": 1}
    waits = await store.recent_waits(10)
    assert len(waits) == 2 and all(w >= 0 for w in waits)


async def test_sqlite_commits_never_checkpoint_a_thread_does_and_close_empties_the_log(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    wal = tmp_path / "store.db-wal"
    s = SqlConversationStore(f"sqlite:///{path}", checkpoint_interval_s=0.05)
    await s.open()
    try:
        # The event loop's connection never checkpoints (a checkpoint syncs the file to disk).
        assert await s._tx(lambda c: c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()) == 0
        await s.get_or_create_conversation("c-1")
        before = path.stat().st_size
        for i in range(300):  # ~3 MB: past the 1000 pages at which a commit would checkpoint
            await s.add_message("c-1", Role.VISITOR, f"{i} " + "x" * 9000)
        for _ in range(100):  # the thread copies the log into the database file meanwhile
            if path.stat().st_size > before + 2_500_000:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > before + 2_500_000
    finally:
        await s.close()
    assert not wal.exists() or wal.stat().st_size == 0  # closed: everything is in the database file
    again = SqlConversationStore(f"sqlite:///{path}")
    await again.open()
    try:
        texts = [m.text for m in await again.messages("c-1")]
        assert len(texts) == 300 and texts[-1].startswith("299 ")
    finally:
        await again.close()


async def test_an_unreachable_database_is_a_clear_backend_unavailable() -> None:
    s = SqlConversationStore("postgresql://nobody:x@127.0.0.1:9/none")
    with pytest.raises(BackendUnavailable):
        await s.open()
    await s.close()


async def test_a_ticket_key_is_stored_once_even_when_retried_concurrently(store: SqlConversationStore) -> None:
    await store.get_or_create_conversation("c1")
    handoff = Handoff(reason="explicit_request", summary={"headline": "Broken parcel"})
    results = await asyncio.gather(*[
        store.add_ticket("c1", "k" * 32, email="jo@example.com", issue="Broken parcel", why="no_agents", handoff=handoff)
        for _ in range(8)
    ])
    assert len({t.id for t, _ in results}) == 1
    assert sum(1 for _, event in results if event is not None) == 1
    [ticket] = await store.tickets("open")
    assert ticket.handoff == handoff and ticket.visitor_label.startswith("Visitor ")
    done, event = await store.close_ticket(ticket.id, "sarah", "Sarah", "called back")
    assert done.status == "done" and event.type == "ticket_updated" and done.closed_at is not None
    assert await store.tickets("open") == [] and len(await store.tickets()) == 1


async def test_timeline_notes_respect_status_and_once_per_queueing(store: SqlConversationStore) -> None:
    await queued(store, "c1")
    await store.get_or_create_conversation("c2")
    assert await store.note_timeline("c2", "unclaimed", "system", require_status=Status.QUEUED) is None
    first = await store.note_timeline("c1", "unclaimed", "system", require_status=Status.QUEUED,
                                      once_per_queueing=True, system_text="Still waiting?")
    assert first is not None
    _conv, entry, events = first
    assert entry.kind == "unclaimed" and [e.type for e in events] == ["message_created", "conversation_updated"]
    assert await store.note_timeline("c1", "unclaimed", "system", once_per_queueing=True) is None
    assert [c.id for c in await store.unclaimed_conversations(store._clock() + 10, "unclaimed")] == []
    await queued(store, "c3")
    assert [c.id for c in await store.unclaimed_conversations(store._clock() + 10, "unclaimed")] == ["c3"]
    kinds = [i.kind for i in await store.pending_outbox("c1")]
    assert kinds[-1] is OutboxKind.LOG  # the offer is recorded in Rasa's tracker like every message
