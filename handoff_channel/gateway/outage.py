"""Keeps the bot answering while the store is down (fail open on the bot path).

Normally every visitor turn is stored before anything else happens. When the store is unavailable
the visitor edge hands the turn here instead: a conversation the bot owns (as last seen on the
bus) gets its turn sent straight to Rasa and the answer emitted at once; a conversation a human
owns is kept for the agent. Everything — visitor turns, bot answers, a handoff the bot asked for —
is journalled in memory, in order, and written to the store as soon as it answers again, so the
inbox ends up with the whole conversation and nothing is answered twice."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Optional

import aiohttp

from ..errors import BackendUnavailable, InvalidTransition
from ..models import Handoff, Message, OutboxKind, Role, Status, now
from ..rasa_pipe import RasaClient, RasaRejected
from ..service import HandoffService
from ..store import ConversationStore
from ..webchat import from_rasa, to_widget

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    conversation_id: str
    kind: str  # "visitor" | "bot" | "handoff"
    text: str = ""
    client_id: str = field(default_factory=lambda: "outage-" + uuid.uuid4().hex)
    payload: Optional[dict[str, Any]] = None
    meta: Optional[dict[str, Any]] = None
    metadata: Optional[dict[str, Any]] = None
    answered: bool = False  # the bot already answered this visitor turn during the outage
    pending: bool = False  # its bot turn is still running: the flush must wait for it
    replies: int = 0  # journal entries already placed right after this one
    handoff: Optional[Handoff] = None


class StoreOutage:
    def __init__(
        self,
        service: HandoffService,
        store: ConversationStore,
        client: RasaClient,
        emit: Callable[[str, dict[str, Any]], Awaitable[None]],
        mark_emitted: Callable[[str, int], None],
    ) -> None:
        self.service = service
        self.store = store
        self.client = client
        self.emit = emit
        self.mark_emitted = mark_emitted
        self.status: dict[str, Status] = {}
        self.journal: list[_Entry] = []
        self._task: Optional[asyncio.Task[None]] = None
        self._chains: dict[str, asyncio.Task[None]] = {}  # per conversation: bot turns in order

    def note_status(self, conversation_id: str, status: str) -> None:
        if len(self.status) > 200_000:  # bounded: forget the oldest half
            for key in list(self.status)[:100_000]:
                del self.status[key]
        self.status[conversation_id] = Status(status)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_loop(), name="store-outage-flush")

    async def close(self) -> None:
        for chain in list(self._chains.values()):
            chain.cancel()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    @property
    def active(self) -> bool:
        return bool(self.journal)

    async def visitor_turn(
        self, conversation_id: str, text: str, metadata: Optional[Mapping[str, Any]]
    ) -> dict[str, Any]:
        status = self.status.get(conversation_id, Status.BOT)
        entry = _Entry(conversation_id, "visitor", text=text, metadata=dict(metadata or {}))
        self.journal.append(entry)
        if not status.human_owned:
            # Acknowledge now (the turn is journalled); the bot answers in the background, one
            # turn after the other per conversation.
            entry.pending = True
            previous = self._chains.get(conversation_id)
            self._chains[conversation_id] = asyncio.create_task(self._answer(previous, entry, metadata))
        return {"ok": True, "journalled": True}

    async def _answer(
        self, previous: Optional[asyncio.Task[None]], entry: _Entry, metadata: Optional[Mapping[str, Any]]
    ) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        try:
            await self._bot_turn(entry, metadata)
        except Exception:
            log.exception("bot turn during the store outage failed for %s", entry.conversation_id)
        finally:
            entry.pending = False
            if self._chains.get(entry.conversation_id) is asyncio.current_task():
                del self._chains[entry.conversation_id]

    async def _bot_turn(self, entry: _Entry, metadata: Optional[Mapping[str, Any]]) -> None:
        conversation_id, text = entry.conversation_id, entry.text
        try:
            result = await self.client.turn(
                {"conversation_id": conversation_id, "message_id": entry.client_id, "text": text,
                 "metadata": dict(metadata or {})}
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, RasaRejected) as exc:
            log.warning("store and Rasa both unavailable for %s: %s; the turn waits", conversation_id, exc)
            return
        entry.answered = True
        parse = result.get("parse")
        if isinstance(parse, Mapping):
            entry.meta = {k: v for k, v in parse.items() if v is not None}
        for m in result.get("messages") or []:
            for part_text, payload, meta in from_rasa(m) if isinstance(m, Mapping) else []:
                self._after(entry, _Entry(conversation_id, "bot", text=part_text, payload=payload, meta=meta))
                widget = to_widget(Message(0, conversation_id, 0, Role.BOT, part_text, now(), payload=payload))
                if widget:
                    await self.emit(conversation_id, widget)
        handoff = result.get("handoff")
        if isinstance(handoff, Mapping):
            self._after(entry, _Entry(conversation_id, "handoff", handoff=Handoff(
                reason=str(handoff.get("reason") or "explicit_request"),
                priority=int(handoff.get("priority") or 2), team=handoff.get("team"),
                evidence=handoff.get("evidence") or {}, summary=handoff.get("summary") or {},
            )))
            self.status[conversation_id] = Status.QUEUED

    def _after(self, turn: _Entry, reply: _Entry) -> None:
        """Journal a reply right after its visitor turn (and its earlier replies), so the record
        reads turn, answer, turn, answer even when the visitor typed ahead."""
        self.journal.insert(self.journal.index(turn) + 1 + turn.replies, reply)
        turn.replies += 1

    async def _flush_loop(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            if not self.journal:
                delay = 0.5
                continue
            try:
                await self.flush()
                if not self.journal:
                    log.info("store is back: the outage journal was written")
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except BackendUnavailable:
                delay = min(delay * 2, 5.0)
            except Exception:
                log.exception("could not write the outage journal; will retry")
                delay = min(delay * 2, 5.0)

    async def flush(self) -> None:
        """Write the journal in order; each entry is idempotent (client ids), so a flush that
        fails half-way simply resumes."""
        while self.journal:
            entry = self.journal[0]
            if entry.pending:
                return  # its answer is still coming; the next flush goes on from here
            cid = entry.conversation_id
            if entry.kind == "visitor":
                await self.store.get_or_create_conversation(cid, entry.metadata or {})

                def route(conv: Any, answered: bool = entry.answered) -> Optional[OutboxKind]:
                    if answered:
                        return None  # Rasa already ran (and recorded) this turn
                    return OutboxKind.LOG if conv.status.human_owned else OutboxKind.TURN

                meta = dict(entry.meta or {})
                if entry.metadata:
                    meta["metadata"] = entry.metadata
                msg, event = await self.store.add_message(
                    cid, Role.VISITOR, entry.text, client_id=entry.client_id, meta=meta or None, route=route
                )
                if event is not None:
                    await self.service.bus.publish(event)
                    self.service.on_outbox(cid)
            elif entry.kind == "bot":
                msg, event = await self.store.add_message(
                    cid, Role.BOT, entry.text, payload=entry.payload, meta=entry.meta, client_id=entry.client_id
                )
                self.mark_emitted(cid, msg.seq)  # the visitor saw it already: do not send it twice
                await self.store.mark_delivered(cid, msg.seq)
                if event is not None:
                    await self.service.bus.publish(event)
            elif entry.kind == "handoff" and entry.handoff is not None:
                try:
                    await self.service.record_handoff(cid, entry.handoff)
                except InvalidTransition:
                    pass  # already recorded by an earlier, half-finished flush
            self.journal.pop(0)
