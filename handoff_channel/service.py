"""Every rule and status move of the handoff, one method per use case. The service talks only to
the store and the bus; the socket.io edge, the inbox API and the Rasa pipe all call in here.

Who owns a conversation is decided here and nowhere else: a visitor turn is routed to the bot or to
the humans under the conversation's row lock (see ``ConversationStore.add_message``)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .bus import EventBus
from .errors import (
    AlreadyAssigned,
    ConversationNotFound,
    Forbidden,
    InvalidPayload,
    InvalidTransition,
    MessageTooLong,
    NotAssignee,
    NotFound,
)
from .models import (
    URGENT,
    Agent,
    Availability,
    Conversation,
    Event,
    Handoff,
    Message,
    Move,
    OutboxKind,
    Outcome,
    Role,
    Status,
    median,
    now,
    queue_priority,
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


class _NoLongerQueued(Exception):
    """The queue notice is not needed: the conversation left the queue before it was stored."""


def wait_notice(position: int, expected_wait_s: Optional[float]) -> str:
    """What a visitor who just joined the queue is told. Without recent waits, nothing about time."""
    text = f"You're number {position} in the queue."
    if expected_wait_s is not None:
        minutes = max(1, round(expected_wait_s / 60))
        text += f" Expected wait: about {minutes} minute{'s' if minutes != 1 else ''}."
    return text


class HandoffService:
    def __init__(
        self, store: ConversationStore, bus: EventBus, settings: Settings, *, clock: Callable[[], float] = now
    ) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.clock = clock
        self._last_touch: dict[str, float] = {}  # username -> last heartbeat written to the store
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
        seen: list[Conversation] = []

        def route(conv: Conversation) -> OutboxKind:
            seen.append(conv)
            return _route_visitor_turn(conv)

        # One transaction in the usual case (the widget's session_request created the
        # conversation); a visitor who never sent one gets it created first.
        async def add() -> tuple[Message, Optional[Event]]:
            return await self.store.add_message(
                conversation_id, Role.VISITOR, clean, client_id=client_id,
                meta={"metadata": dict(metadata)} if metadata else None, route=route,
            )

        try:
            msg, event = await add()
        except ConversationNotFound:
            seen.append(await self.store.get_or_create_conversation(conversation_id, metadata or {}))
            msg, event = await add()
        if metadata and seen and not seen[-1].metadata:
            await self.store.update_metadata(conversation_id, metadata)
        if event is not None:
            await self._publish([event])
            self.on_outbox(conversation_id)
        return msg

    # -- bot results (called by the Rasa pipe) ---------------------------------------------------
    async def record_bot_messages(
        self, conversation_id: str, bot_messages: Sequence[tuple[str, Optional[Mapping[str, Any]], Optional[Mapping[str, Any]]]],
        *, client_id: Optional[str] = None, first: int = 0,
    ) -> list[Message]:
        """Store what the bot said (text, widget payload, meta) and let the relay deliver it. With
        ``client_id`` (the turn's), part ``first + i`` is stored as ``<client_id>:<first + i>``, so
        a turn's answer stored again (a retry, or the whole answer after its streamed parts) is
        stored once."""
        stored = []
        for i, (text, payload, meta) in enumerate(bot_messages, first):
            msg, event = await self.store.add_message(
                conversation_id, Role.BOT, text, payload=payload, meta=meta,
                client_id=f"{client_id}:{i}" if client_id else None,
            )
            await self._publish([event])
            stored.append(msg)
        return stored

    async def annotate_visitor_message(self, message: Message, parse: Mapping[str, Any]) -> None:
        meta = dict(message.meta or {})
        meta.update({k: v for k, v in parse.items() if v is not None})
        await self._publish([await self.store.set_message_meta(message.id, meta)])

    async def record_handoff(self, conversation_id: str, handoff: Handoff) -> Conversation:
        """The bot stepped aside: the conversation joins the human queue. Its priority is the
        reason's severity, one higher for a VIP customer (capped at urgent). With auto routing it
        goes straight to an agent if one is free; otherwise the visitor is told their place in the
        queue and the expected wait."""
        current = await self.store.get_conversation(conversation_id)
        base = handoff.priority
        if str(current.visitor.get("tier", "")).lower() == "vip":
            handoff = dataclasses.replace(handoff, priority=min(handoff.priority + 1, URGENT))
        conv, _entry, events = await self.store.transition(
            conversation_id, Move.HANDOFF_REQUESTED, "bot",
            detail={"reason": handoff.reason, "priority": handoff.priority, "base_priority": base,
                    "team": handoff.team},
            handoff=handoff,
        )
        await self._publish(events)
        await self.route_queue()
        conv = await self.store.get_conversation(conversation_id)
        if conv.status is Status.QUEUED:
            await self._tell_queue_position(conv)
        return conv

    async def _tell_queue_position(self, conv: Conversation) -> None:
        queue = await self.conversations("unassigned", None)
        position = next((i for i, c in enumerate(queue, 1) if c.id == conv.id), len(queue) or 1)
        expected = median(await self.store.recent_waits(self.settings.wait_samples))

        def still_queued(current: Conversation) -> OutboxKind:
            # Checked under the row lock: an agent who claimed meanwhile has already joined, and
            # "you're in the queue" after "Sarah joined the chat" would be wrong.
            if current.status is not Status.QUEUED:
                raise _NoLongerQueued()
            return OutboxKind.LOG

        try:
            _msg, event = await self.store.add_message(
                conv.id, Role.SYSTEM, wait_notice(position, expected),
                payload={"handoff": {"status": Status.QUEUED.value, "queue_position": position,
                                     "expected_wait_s": expected}},
                route=still_queued,
            )
        except _NoLongerQueued:
            return
        if event is not None:
            await self._publish([event])
            self.on_outbox(conv.id)

    def queue_priority(self, conv: Conversation) -> int:
        return queue_priority(conv, self.clock(), self.settings.priority_wait_s)

    # -- availability, capacity, routing ------------------------------------------------------
    async def heartbeat(self, agent: Agent, *, force: bool = False) -> None:
        """The agent's inbox is open. Written at most every few seconds per agent (any
        authenticated request counts), so busy inboxes do not turn into a write per request."""
        t = self.clock()
        last = self._last_touch.get(agent.username)
        if force or last is None or t - last >= self.settings.heartbeat_timeout_s / 6:
            self._last_touch[agent.username] = t
            await self.store.touch_agent(agent.username, t)

    async def sweep_silent_agents(self) -> list[Agent]:
        """Agents whose inbox stopped sending heartbeats become away. Run periodically by the
        gateway."""
        gone = await self.store.mark_silent_agents_away(self.clock() - self.settings.heartbeat_timeout_s)
        for agent in gone:
            log.info("agent %s sent no heartbeat for %.0f s: now away", agent.username,
                     self.settings.heartbeat_timeout_s)
        return gone

    async def set_availability(self, agent: Agent, value: Any) -> Agent:
        try:
            wanted = Availability(value)
        except ValueError:
            raise InvalidPayload("'availability' must be available, busy or away.") from None
        await self.heartbeat(agent, force=True)
        updated = await self.store.set_availability(agent.username, wanted)
        if wanted is Availability.AVAILABLE:
            await self.route_queue()
        return updated

    async def update_agent(self, supervisor: Agent, username: str, capacity: Any = None, teams: Any = None) -> Agent:
        """A supervisor sets an agent's capacity and/or teams."""
        self.require_supervisor(supervisor)
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= 100):
            raise InvalidPayload("'capacity' must be a whole number from 0 to 100.")
        if teams is not None:
            if isinstance(teams, str):
                teams = teams.split(",")
            if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
                raise InvalidPayload("'teams' must be a list of team names.")
            teams = [t.strip().lower() for t in teams if t.strip()]
        if capacity is None and teams is None:
            raise InvalidPayload("Send 'capacity' and/or 'teams'.")
        updated = await self.store.update_agent(username, capacity=capacity, teams=teams)
        await self.route_queue()
        return updated

    async def agents_overview(self, supervisor: Agent) -> dict[str, Any]:
        """Every agent's status, load and capacity, and the queue depth (supervisors only)."""
        self.require_supervisor(supervisor)
        loads = await self.store.agent_loads()
        agents = await self.store.list_agents()
        queue = await self.store.list_conversations([Status.QUEUED], limit=10_000)
        return {
            "agents": [dict(a.as_dict(), load=loads.get(a.username, 0)) for a in agents],
            "queue_depth": len(queue),
            "urgent_queued": sum(1 for c in queue if self.queue_priority(c) >= URGENT),
            "routing": self.settings.routing,
        }

    async def route_queue(self) -> int:
        """Auto routing: give each queued conversation, most urgent first, to the least-loaded
        available agent with free capacity (of the conversation's team, when some agent has that
        team). Returns how many were assigned. Manual routing: nothing."""
        if self.settings.routing != "auto":
            return 0
        queue = await self.conversations("unassigned", None)
        if not queue:
            return 0
        agents = [a for a in await self.store.list_agents() if a.availability is Availability.AVAILABLE]
        loads = await self.store.agent_loads()
        known_teams = {t for a in await self.store.list_agents() for t in a.teams}
        assigned = 0
        for conv in queue:
            team = (conv.handoff.team or "").lower() if conv.handoff else ""
            pool = [a for a in agents if loads.get(a.username, 0) < a.capacity]
            if team and team in known_teams:
                pool = [a for a in pool if team in a.teams]
            if not pool:
                continue
            chosen = min(pool, key=lambda a: (loads.get(a.username, 0), a.username))
            try:
                await self.claim(conv.id, chosen, auto=True)
            except (AlreadyAssigned, InvalidTransition):
                continue  # someone claimed it meanwhile
            loads[chosen.username] = loads.get(chosen.username, 0) + 1
            assigned += 1
        return assigned

    async def transfer(self, conversation_id: str, agent: Agent, to: Any, note: Any = None) -> Conversation:
        """Pass an assigned conversation to another agent, with a note for them. Only the assignee
        or a supervisor may; the visitor is told who joined."""
        if not isinstance(to, str) or not to.strip():
            raise InvalidPayload("'to' must name an agent.")
        if note is not None and not isinstance(note, str):
            raise InvalidPayload("'note' must be a string.")
        if note and len(note) > self.settings.max_message_chars:
            raise MessageTooLong(len(note), self.settings.max_message_chars)
        conv = await self.store.get_conversation(conversation_id)
        target = await self.store.get_agent(to.strip())
        if target is None:
            raise NotFound(f"No agent {to.strip()!r}.")
        if conv.status is Status.ASSIGNED and conv.assignee == target.username:
            raise InvalidPayload(f"Conversation {conversation_id!r} is already assigned to {target.display_name}.")
        clean_note = (note or "").strip()
        conv, _entry, events = await self.store.transition(
            conversation_id, Move.TRANSFERRED, agent.username, actor_name=agent.display_name,
            detail={"note": clean_note},
            require_assignee=None if agent.role == "supervisor" else agent.username,
            assign_to=(target.username, target.display_name),
            system_text=f"{target.display_name} joined the chat",
        )
        await self._publish(events)
        if clean_note:
            await self.add_note(conversation_id, agent, f"Transferred to {target.display_name}: {clean_note}")
        self.on_outbox(conversation_id)
        return conv

    # -- agents ---------------------------------------------------------------------------------
    async def conversations(self, view: str, agent: Optional[Agent]) -> list[Conversation]:
        if view not in VIEWS:
            raise InvalidPayload(f"Unknown view {view!r}; use one of {', '.join(VIEWS)}.")
        convs = await self.store.list_conversations(
            VIEWS[view], assignee=agent.username if view == "mine" and agent else None
        )
        if view in ("unassigned", "open"):
            # Highest queue priority first (severity, VIP, long wait), then longest waiting.
            convs.sort(key=lambda c: (-self.queue_priority(c), c.queued_at or c.created_at))
        return convs

    async def conversation(self, conversation_id: str) -> tuple[Conversation, list[Message], list[Any]]:
        conv = await self.store.get_conversation(conversation_id)
        return conv, await self.store.messages(conversation_id), await self.store.timeline(conversation_id)

    async def claim(self, conversation_id: str, agent: Agent, *, auto: bool = False) -> Conversation:
        """An agent takes a queued conversation (``auto``: routing gave it to them). Capacity
        limits auto routing only: an agent may always pick one more by hand."""
        conv, _entry, events = await self.store.transition(
            conversation_id, Move.CLAIMED, agent.username, actor_name=agent.display_name,
            detail={"auto": True} if auto else None,
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
        await self.route_queue()  # the agent has room for one more
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
