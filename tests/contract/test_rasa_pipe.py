"""What the Rasa pipe sends to Rasa, and how often, when things go wrong: Rasa away longer than an
outbox lease lasts with two gateways on one PostgreSQL store, and a gateway that dies after Rasa
ran a turn or a hand-back but before it finished the item. Rasa here is a stand-in HTTP server
that can be "away" (503) and notes every request: the point is what reaches it."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from handoff_channel.bus import MemoryEventBus
from handoff_channel.models import Agent, Handoff, Move, Role, VisitorChoice
from handoff_channel.rasa_pipe import LOG_BATCH_MAX_LINES, RasaClient, RasaPipe
from handoff_channel.service import HandoffService
from handoff_channel.settings import Settings
from handoff_channel.store import SqlConversationStore

from ..support import free_port


class StandInRasa:
    def __init__(self, up: bool = False) -> None:
        self.up = up
        self.turns: list[dict[str, Any]] = []
        self.handbacks: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.calls: list[str] = []  # the order requests came in: "turn", "log", "handback"
        self.refused = 0

    async def turn(self, request: web.Request) -> web.Response:
        if not self.up:
            self.refused += 1
            return web.json_response({"error": {"code": "not_ready"}}, status=503)
        body = await request.json()
        self.turns.append(body)
        self.calls.append("turn")
        return web.json_response({"messages": [{"text": f"answer to {body['text']}"}]})

    async def handback(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.handbacks.append(body)
        self.calls.append("handback")
        return web.json_response({"messages": [{"text": "I'm back. Anything else?"}]})

    async def log(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.logs.append(body)
        self.calls.append("log")
        return web.json_response({"logged": len(body["entries"]), "intents": {}})

    def logged(self) -> list[str]:
        return [e["text"] for b in self.logs for e in b["entries"]]

    async def serve(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/webhooks/handoff/turn", self.turn)
        app.router.add_post("/webhooks/handoff/handback", self.handback)
        app.router.add_post("/webhooks/handoff/log", self.log)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner, f"http://127.0.0.1:{port}"


async def _pipe_on(db: str, settings: Settings) -> RasaPipe:
    store = SqlConversationStore(db)
    await store.open()
    pipe = RasaPipe(store, HandoffService(store, MemoryEventBus(), settings), RasaClient(settings), settings)
    await pipe.start()
    return pipe


def _dies_before_finishing(pipe: RasaPipe) -> None:
    """The gateway dies right after Rasa answered: the item is never finished."""
    async def crash(_ids: Any) -> None:
        raise RuntimeError("the gateway died here")
    pipe.store.finish_outbox = crash  # type: ignore[method-assign]


async def _drained(pipe: RasaPipe) -> None:
    for _ in range(100):
        if not await pipe.store.conversations_with_pending_outbox():
            break
        await asyncio.sleep(0.05)
    await pipe.idle()


async def _stopped(pipe: RasaPipe) -> None:
    await pipe.close()
    await pipe.store.close()


async def test_a_turn_retried_past_its_lease_reaches_rasa_once(pg_url: str) -> None:
    rasa = StandInRasa()
    runner, url = await rasa.serve()
    settings = Settings(rasa_url=url, rasa_token="t", rasa_timeout_s=5.0, rasa_retry_max_s=0.2)
    pipes = []
    try:
        for instance in ("gw-a", "gw-b"):
            pipe = await _pipe_on(pg_url, settings)
            pipe.owner = instance
            pipe.lease_ttl_s = 0.5  # Rasa stays away for several leases
            pipes.append(pipe)
        await pipes[0].service.visitor_message("c-1", "where is my order?", client_id="v-1")
        await asyncio.sleep(3.0)  # six leases long; both sweepers look every second
        assert rasa.refused >= 3 and rasa.turns == []
        rasa.up = True
        await _drained(pipes[0])
        await asyncio.sleep(1.5)  # a second drainer, if there were one, would have sent it by now
        assert [t["text"] for t in rasa.turns] == ["where is my order?"]
        bot = [m.text for m in await pipes[0].store.messages("c-1") if m.role is Role.BOT]
        assert bot == ["answer to where is my order?"]
    finally:
        for pipe in pipes:
            await _stopped(pipe)
        await runner.cleanup()


async def test_a_turn_or_hand_back_sent_again_after_a_crash_says_retry(tmp_path: Path) -> None:
    rasa = StandInRasa(up=True)
    runner, url = await rasa.serve()
    settings = Settings(rasa_url=url, rasa_token="t", rasa_timeout_s=5.0, rasa_retry_max_s=0.2, rasa_log_batch_s=0)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    try:
        first = await _pipe_on(db, settings)
        _dies_before_finishing(first)
        await first.service.visitor_message("c-1", "where is my order?", client_id="v-1")
        await first.idle()
        await _stopped(first)
        second = await _pipe_on(db, settings)  # the gateway restarts: its outbox still holds the turn
        await _drained(second)
        # Rasa is told the turn was sent before: it answers from its tracker instead of running it twice.
        assert [(t["message_id"], t["retry"]) for t in rasa.turns] == [(rasa.turns[0]["message_id"], False),
                                                                       (rasa.turns[0]["message_id"], True)]
        bot = [m.text for m in await second.store.messages("c-1") if m.role is Role.BOT]
        assert bot == ["answer to where is my order?"]

        await second.store.transition("c-1", Move.HANDOFF_REQUESTED, "bot", handoff=Handoff(reason="explicit_request"))
        _dies_before_finishing(second)
        assert await second.service.visitor_choice("c-1", VisitorChoice.CANCEL)
        await second.idle()
        await _stopped(second)
        third = await _pipe_on(db, settings)
        await _drained(third)
        assert [h["retry"] for h in rasa.handbacks] == [False, True]
        assert rasa.handbacks[0]["handback_id"] == rasa.handbacks[1]["handback_id"]
        await _stopped(third)
    finally:
        await runner.cleanup()


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@asynccontextmanager
async def _batching_pipe(tmp_path: Path, batch_s: float, claimed_batch_s: float) -> AsyncIterator[tuple[StandInRasa, RasaPipe]]:
    rasa = StandInRasa(up=True)
    runner, url = await rasa.serve()
    settings = Settings(rasa_url=url, rasa_token="t", rasa_timeout_s=5.0, rasa_retry_max_s=0.2,
                        rasa_log_batch_s=batch_s, rasa_log_claimed_batch_s=claimed_batch_s)
    pipe = await _pipe_on(f"sqlite:///{tmp_path / 'h.db'}", settings)
    try:
        yield rasa, pipe
    finally:
        await _stopped(pipe)
        await runner.cleanup()


async def _claimed(svc: HandoffService, conversation_id: str) -> Agent:
    """A conversation that asked for a person and that sarah has claimed."""
    sarah = await svc.store.create_agent("sarah", "Sarah", "hash")
    await svc.visitor_message(conversation_id, "I want a human", client_id="v-1")
    await svc.record_handoff(conversation_id, Handoff(reason="explicit_request"))
    await svc.claim(conversation_id, sarah)
    return sarah


async def test_a_claimed_stretch_reaches_rasa_in_one_batch_before_its_hand_back(tmp_path: Path) -> None:
    """While queued, a visitor line reaches Rasa within the short batch (NLU must see a "never
    mind" at once). Once an agent has claimed the conversation its lines wait for the longer batch;
    the hand-back sends them all first, in order, then the hand-back itself."""
    async with _batching_pipe(tmp_path, 0.2, 30) as (rasa, pipe):
        svc = pipe.service
        sarah = await svc.store.create_agent("sarah", "Sarah", "hash")
        await svc.visitor_message("c-1", "I want a human", client_id="v-1")
        await _until(lambda: rasa.calls == ["turn"])
        await svc.record_handoff("c-1", Handoff(reason="explicit_request"))
        await svc.visitor_message("c-1", "are you there?", client_id="v-2")
        await _until(lambda: "are you there?" in rasa.logged(), timeout=3.0)  # queued: at once

        await svc.claim("c-1", sarah)
        logs_before = len(rasa.logs)
        for i in range(3):
            await svc.visitor_message("c-1", f"line {i}", client_id=f"v-l{i}")
            await svc.agent_reply("c-1", sarah, f"answer {i}")
        await asyncio.sleep(1.0)  # five short batches long
        assert len(rasa.logs) == logs_before  # claimed: nothing sent yet
        assert await svc.store.conversations_with_pending_outbox() == ["c-1"]

        await svc.hand_back("c-1", sarah)
        await _until(lambda: len(rasa.handbacks) == 1)
        assert rasa.calls[-2:] == ["log", "handback"]
        last = [e["text"] for e in rasa.logs[-1]["entries"]]
        assert [t for t in last if t.startswith(("line", "answer"))] == [
            "line 0", "answer 0", "line 1", "answer 1", "line 2", "answer 2"]
        assert rasa.logged().count("line 0") == 1
        await _drained(pipe)
        assert await svc.store.conversations_with_pending_outbox() == []


async def test_a_claimed_stretch_is_recorded_when_its_batch_is_due_without_a_hand_back(tmp_path: Path) -> None:
    async with _batching_pipe(tmp_path, 0.1, 1.5) as (rasa, pipe):
        svc = pipe.service
        await _claimed(svc, "c-1")
        await _drained(pipe)
        logs_before = len(rasa.logs)
        await svc.visitor_message("c-1", "first", client_id="v-a")
        await asyncio.sleep(0.5)
        await svc.visitor_message("c-1", "second", client_id="v-b")  # wakes the worker; the batch stays due at 1.5 s
        await asyncio.sleep(0.5)
        assert len(rasa.logs) == logs_before
        await _until(lambda: len(rasa.logs) == logs_before + 1, timeout=3.0)
        assert [e["text"] for e in rasa.logs[-1]["entries"]] == ["first", "second"]


async def test_a_claimed_conversations_waiting_lines_are_read_once_per_batch_not_once_per_line(tmp_path: Path) -> None:
    """A line of a claimed conversation does not make the waiting worker read the whole waiting
    batch back from the store (at 500 conversations that was a sixth of the gateway's CPU); the
    batch is read when it is due, when it is full, or when something else happens (a hand-back)."""
    async with _batching_pipe(tmp_path, 0.1, 30) as (rasa, pipe):
        svc = pipe.service
        sarah = await _claimed(svc, "c-1")
        await svc.visitor_message("c-1", "line 0", client_id="v-l0")
        await asyncio.sleep(0.2)  # the worker has read the batch and waits for it to be due
        reads = 0
        outbox_work = svc.store.outbox_work

        async def counted(conversation_id: str) -> Any:
            nonlocal reads
            reads += 1
            return await outbox_work(conversation_id)

        svc.store.outbox_work = counted  # type: ignore[method-assign]
        for i in range(1, 6):
            await svc.visitor_message("c-1", f"line {i}", client_id=f"v-l{i}")
            await svc.agent_reply("c-1", sarah, f"answer {i}")
            await asyncio.sleep(0.05)  # lines come one by one, as people type them
        await asyncio.sleep(0.3)
        assert reads == 0
        await svc.hand_back("c-1", sarah)  # not a line: the worker looks at once
        await _until(lambda: len(rasa.handbacks) == 1)
        assert 1 <= reads <= 3
        logged = [t for t in rasa.logged() if t.startswith(("line", "answer"))]
        assert logged == ["line 0"] + [t for i in range(1, 6) for t in (f"line {i}", f"answer {i}")]


async def test_a_claimed_visitor_who_types_fast_is_recorded_in_batches_of_bounded_size(tmp_path: Path) -> None:
    async with _batching_pipe(tmp_path, 0.1, 30) as (rasa, pipe):
        svc = pipe.service
        sarah = await _claimed(svc, "c-1")
        logs_before = len(rasa.logs)
        lines = [f"pasted line {i}" for i in range(2 * LOG_BATCH_MAX_LINES + 5)]
        for i, text in enumerate(lines):
            await svc.visitor_message("c-1", text, client_id=f"v-p{i}")
        await _until(lambda: len(rasa.logs) - logs_before >= 2)
        await asyncio.sleep(0.5)
        batches = rasa.logs[logs_before:]
        assert [len(b["entries"]) for b in batches] == [LOG_BATCH_MAX_LINES, LOG_BATCH_MAX_LINES]
        waiting = [t for t in lines if t not in rasa.logged()]
        assert 0 < len(waiting) < LOG_BATCH_MAX_LINES  # these wait for the batch time or the hand-back
        await svc.hand_back("c-1", sarah)
        await _until(lambda: len(rasa.handbacks) == 1)
        assert [t for t in rasa.logged() if t.startswith("pasted")] == lines
