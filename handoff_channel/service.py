"""Every rule and status move of the handoff, one method per use case. The service talks only to
the store and the bus; the socket.io edge, the inbox API and the Rasa pipe all call in here.

Who owns a conversation is decided here and nowhere else: a visitor turn is routed to the bot or to
the humans under the conversation's row lock (see ``ConversationStore.add_message``)."""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .bus import EventBus
from .errors import (
    Forbidden,
    InvalidPayload,
    InvalidTransition,
    MessageTooLong,
    NotAssignee,
)
from .models import (
    Agent,
    Conversation,
    Event,
    Handoff,
    Message,
    Move,
    OutboxKind,
    Outcome,
    Role,
    Status,
)
from .settings import Settings
from .store import ConversationStore

log = logging.getLogger(__name__)

VIEWS: dict[str, Optional[tuple[Status, ...]]] = {
    "unassigned": (Status.QUEUED,),
    "mine": (Status.ASSIGNED,),
    "open": (Status.QUEUED, Status.ASSIGNED),
    "assigned": (Status.ASSIGNED,),
    "resolved": (Status.RESOLVED,),
    "bot": (Status.BOT,),
    "all": None,
}


def _route_visitor_turn(conv: Conversation) -> OutboxKind:
    # While a human owns the conversation the bot only records the turn; it never answers.
    return OutboxKind.LOG if conv.status.human_owned else OutboxKind.TURN


class HandoffService:
    def __init__(self, store: ConversationStore, bus: EventBus, settings: Settings) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        # Set by the Rasa pipe: wakes the worker of a conversation that has new outbox items.
        self.on_outbox: Callable[[str], None] = lambda _conversation_id: None

    async def _publish(self, events: Iterable[Optional[Event]]) -> None:
        for event in events:
            if event is not None:
                await self.bus.publish(event)

    def _clean_text(self, text: Any, *, field: str = "text") -> str:
        if not isinstance(text, str):
            raise InvalidPayload(f"'{field}' must be a string.")
        text = text.strip()
        if not text:
            raise InvalidPayload(f"'{field}' must not be empty.")
        if len(text) > self.settings.max_message_chars:
            raise MessageTooLong(len(text), self.settings.max_message_chars)
        return text

    # -- visitor --------------------------------------------------------------------------------
    async def visitor_connected(
        self, conversation_id: str, metadata: Optional[Mapping[str, Any]] = None
    ) -> Conversation:
        return await self.store.get_or_create_conversation(conversation_id, metadata or {})

    async def visitor_message(
        self,
        conversation_id: str,
        text: Any,
        *,
        client_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Message:
        """Store a visitor turn durably, then route it: to the bot while the bot owns the
        conversation, to the humans (and only into the tracker's record) while a human does."""
        clean = self._clean_text(text, field="message")
        conv = await self.store.get_or_create_conversation(conversation_id, metadata or {})
        if metadata and metadata != conv.metadata and not conv.metadata:
            await self.store.update_metadata(conversation_id, metadata)
        msg, event = await self.store.add_message(
            conversation_id, Role.VISITOR, clean, client_id=client_id,
            meta={"metadata": dict(metadata)} if metadata else None,
            route=_route_visitor_turn,
        )
        if event is not None:
            await self._publish([event])
            self.on_outbox(conversation_id)
        return msg

    # -- bot results (called by the Rasa pipe) ---------------------------------------------------
    async def record_bot_messages(
        self, conversation_id: str, bot_messages: Sequence[tuple[str, Optional[Mapping[str, Any]], Optional[Mapping[str, Any]]]]
    ) -> list[Message]:
        """Store what the bot said (text, widget payload, meta) and let the relay deliver it."""
        stored = []
        for text, payload, meta in bot_messages:
            msg, event = await self.store.add_message(
                conversation_id, Role.BOT, text, payload=payload, meta=meta
            )
            await self._publish([event])
            stored.append(msg)
        return stored

    async def annotate_visitor_message(self, message: Message, parse: Mapping[str, Any]) -> None:
        meta = dict(message.meta or {})
        meta.update({k: v for k, v in parse.items() if v is not None})
        await self._publish([await self.store.set_message_meta(message.id, meta)])

    async def record_handoff(self, conversation_id: str, handoff: Handoff) -> Conversation:
        """The bot stepped aside: the conversation joins the human queue."""
        conv, _entry, events = await self.store.transition(
            conversation_id, Move.HANDOFF_REQUESTED, "bot",
            detail={"reason": handoff.reason, "priority": handoff.priority, "team": handoff.team},
            handoff=handoff,
        )
        await self._publish(events)
        return conv

    # -- agents ---------------------------------------------------------------------------------
    async def conversations(self, view: str, agent: Agent) -> list[Conversation]:
        if view not in VIEWS:
            raise InvalidPayload(f"Unknown view {view!r}; use one of {', '.join(VIEWS)}.")
        convs = await self.store.list_conversations(
            VIEWS[view], assignee=agent.username if view == "mine" else None
        )
        if view in ("unassigned", "open"):
            # Most urgent first, then longest waiting.
            convs.sort(key=lambda c: (-(c.handoff.priority if c.handoff else 0), c.queued_at or c.created_at))
        return convs

    async def conversation(self, conversation_id: str) -> tuple[Conversation, list[Message], list[Any]]:
        conv = await self.store.get_conversation(conversation_id)
        return conv, await self.store.messages(conversation_id), await self.store.timeline(conversation_id)

    async def claim(self, conversation_id: str, agent: Agent) -> Conversation:
        conv, _entry, events = await self.store.transition(
            conversation_id, Move.CLAIMED, agent.username, actor_name=agent.display_name,
            system_text=f"{agent.display_name} joined the chat",
        )
        await self._publish(events)
        self.on_outbox(conversation_id)
        return conv

    async def agent_reply(
        self, conversation_id: str, agent: Agent, text: Any, *, client_id: Optional[str] = None
    ) -> Message:
        clean = self._clean_text(text)

        def route(conv: Conversation) -> OutboxKind:
            if conv.status is not Status.ASSIGNED:
                if conv.status is Status.QUEUED:
                    raise NotAssignee(conversation_id, None)
                raise InvalidTransition(conversation_id, conv.status.value, "replied to by an agent")
            if conv.assignee != agent.username:
                raise NotAssignee(conversation_id, conv.assignee, conv.assignee_name)
            return OutboxKind.LOG

        msg, event = await self.store.add_message(
            conversation_id, Role.AGENT, clean, author=agent.username,
            author_name=agent.display_name, client_id=client_id, route=route,
        )
        if event is not None:
            await self._publish([event])
            self.on_outbox(conversation_id)
        return msg

    async def add_note(self, conversation_id: str, agent: Agent, text: Any) -> Message:
        """An internal note: stored and shown to agents, never sent to the visitor or to Rasa."""
        clean = self._clean_text(text)
        msg, event = await self.store.add_message(
            conversation_id, Role.NOTE, clean, author=agent.username, author_name=agent.display_name
        )
        await self._publish([event])
        return msg

    def _check_owner(self, conv: Conversation, agent: Agent) -> None:
        if conv.status is Status.ASSIGNED and conv.assignee != agent.username and agent.role != "supervisor":
            raise NotAssignee(conv.id, conv.assignee, conv.assignee_name)

    async def hand_back(
        self,
        conversation_id: str,
        agent: Agent,
        *,
        outcome: Any = "continue",
        note: Any = None,
        facts: Any = None,
        move: Move = Move.HANDED_BACK,
    ) -> Conversation:
        """End the human stretch: the bot resumes, told what happened (outcome, note, facts)."""
        try:
            outcome_value = Outcome(outcome or "continue")
        except ValueError:
            raise InvalidPayload(
                f"Unknown outcome {outcome!r}; use one of {', '.join(o.value for o in Outcome)}."
            ) from None
        if note is not None and not isinstance(note, str):
            raise InvalidPayload("'note' must be a string.")
        if note and len(note) > self.settings.max_message_chars:
            raise MessageTooLong(len(note), self.settings.max_message_chars)
        if facts is None:
            facts = {}
        if not isinstance(facts, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in facts.items()
        ):
            raise InvalidPayload("'facts' must be an object of names to text values.")
        conv = await self.store.get_conversation(conversation_id)
        self._check_owner(conv, agent)
        payload = {
            "agent": agent.username,
            "agent_name": agent.display_name,
            "outcome": outcome_value.value,
            "note": (note or "").strip(),
            "facts": {k: str(v) for k, v in facts.items()},
        }
        conv, _entry, events = await self.store.transition(
            conversation_id, move, agent.username, actor_name=agent.display_name,
            detail={"outcome": outcome_value.value, "note": payload["note"]},
            require_assignee=None if agent.role == "supervisor" else agent.username,
            outbox=(OutboxKind.HANDBACK, payload),
            system_text=f"{agent.display_name} left the chat",
        )
        await self._publish(events)
        self.on_outbox(conversation_id)
        return conv

    async def resolve(self, conversation_id: str, agent: Agent, *, note: Any = None) -> Conversation:
        """Close the human stretch as resolved. The bot is restored for the visitor, who may go on
        talking to it; the conversation stays in the Resolved view until a new handoff."""
        return await self.hand_back(
            conversation_id, agent, outcome=Outcome.RESOLVED.value, note=note, move=Move.RESOLVED
        )

    def require_supervisor(self, agent: Agent) -> None:
        if agent.role != "supervisor":
            raise Forbidden("Only supervisors may do this.")
