"""Every rule and status move of the handoff, one method per use case. The service talks only to
the store and the bus; the socket.io edge, the inbox API and the Rasa pipe all call in here.

Who owns a conversation is decided here and nowhere else: a visitor turn is routed to the bot or to
the humans under the conversation's row lock (see ``ConversationStore.add_message``)."""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .bus import EventBus
from .errors import (
    AlreadyAssigned,
    ConversationNotFound,
    Forbidden,
    InvalidPayload,
    InvalidTransition,
    MessageTooLong,
    NoSupervisor,
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
    Ticket,
    TicketWhy,
    VisitorChoice,
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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _reply(title: str, payload: str) -> dict[str, str]:
    return {"content_type": "text", "title": title, "payload": payload}


# Quick replies a waiting visitor gets. The widget sends the payload as the visitor's message; the
# bot's NLU reads it (intent with confidence 1) when the turn is recorded, and the gateway acts.
CANCEL_REPLY = _reply("Never mind, back to the assistant", "/handoff_cancel")
UNCLAIMED_REPLIES = [
    _reply("Keep waiting", "/handoff_keep_waiting"),
    _reply("Leave a message", "/handoff_leave_message"),
    _reply("Back to the assistant", "/handoff_cancel"),
]
UNCLAIMED_TEXT = (
    "Sorry for the wait: everyone on our team is still busy. You can keep waiting, leave a message "
    "and we'll get back to you by email, or go back to the assistant."
)
KEEP_WAITING_TEXT = "Thanks for waiting. You're still in the queue, and a person will be with you as soon as they can."
UNCLAIMED = "unclaimed"  # timeline kind of the offer made to a visitor nobody claimed
# The bot's intents for a waiting visitor's choices (bot/domain.yml).
CHOICE_INTENTS = {
    "handoff_cancel": VisitorChoice.CANCEL,
    "handoff_leave_message": VisitorChoice.LEAVE_MESSAGE,
    "handoff_keep_waiting": VisitorChoice.KEEP_WAITING,
}
MAX_EMAIL_CHARS = 254
TICKET_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class HandoffService:
    def __init__(
        self, store: ConversationStore, bus: EventBus, settings: Settings, *, clock: Callable[[], float] = now
    ) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.clock = clock
        self._last_touch: dict[str, float] = {}  # username -> last heartbeat written to the store
        self.hours = settings.hours
        # The desk status sent with every bot turn, reused for a moment: at most one agents query
        # per second per gateway, and none in between (dropped when availability changes here).
        self._desk: Optional[tuple[float, dict[str, Any]]] = None
        # Set by the Rasa pipe: wakes the worker of a conversation that has new outbox items.
        # Called after anything is queued for Rasa: on_outbox(conversation_id, line=False).
        # line=True: only a line of a claimed conversation (the agent's or the visitor's).
        self.on_outbox: Callable[..., None] = lambda _conversation_id, line=False: None

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
            self.on_outbox(conversation_id, line=bool(seen) and seen[-1].status is Status.ASSIGNED)
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
                                     "expected_wait_s": expected},
                         "quick_replies": [CANCEL_REPLY]},
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
        if gone:
            self._desk = None
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
        self._desk = None
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

    def _clean_note(self, note: Any) -> str:
        if note is not None and not isinstance(note, str):
            raise InvalidPayload("'note' must be a string.")
        if note and len(note) > self.settings.max_message_chars:
            raise MessageTooLong(len(note), self.settings.max_message_chars)
        return (note or "").strip()

    async def transfer(
        self, conversation_id: str, agent: Agent, to: Any = None, note: Any = None, *, team: Any = None
    ) -> Conversation:
        """Pass an assigned conversation to another agent (``to``), or back to the queue for a
        team (``team``), with a note for them. Only the assignee or a supervisor may; the visitor
        is told who joined, or that another team will take over."""
        if team is not None and to is None:
            return await self._transfer_to_team(conversation_id, agent, team, note)
        if not isinstance(to, str) or not to.strip():
            raise InvalidPayload("Send 'to' (an agent's username) or 'team' (a team name).")
        clean_note = self._clean_note(note)
        conv = await self.store.get_conversation(conversation_id)
        target = await self.store.get_agent(to.strip())
        if target is None:
            raise NotFound(f"No agent {to.strip()!r}.")
        if conv.status is Status.ASSIGNED and conv.assignee == target.username:
            raise InvalidPayload(f"Conversation {conversation_id!r} is already assigned to {target.display_name}.")
        return await self._pass_on(
            conversation_id, agent, Move.TRANSFERRED, clean_note, f"Transferred to {target.display_name}",
            assign_to=(target.username, target.display_name), system_text=f"{target.display_name} joined the chat",
        )

    async def _pass_on(
        self, conversation_id: str, agent: Agent, move: Move, note: str, note_prefix: str, *,
        system_text: str, assign_to: Optional[tuple[str, str]] = None, team: Optional[str] = None,
    ) -> Conversation:
        """Move a conversation on (to an agent, a supervisor or a team). Only the assignee or a
        supervisor may; the asker's note is on the timeline and, for whoever takes over, an
        internal note."""
        conv, _entry, events = await self.store.transition(
            conversation_id, move, agent.username, actor_name=agent.display_name, detail={"note": note},
            require_assignee=None if agent.role == "supervisor" else agent.username,
            assign_to=assign_to, team=team, system_text=system_text,
        )
        await self._publish(events)
        if note:
            await self.add_note(conversation_id, agent, f"{note_prefix}: {note}")
        self.on_outbox(conversation_id)
        return conv

    async def _transfer_to_team(self, conversation_id: str, agent: Agent, team: Any, note: Any) -> Conversation:
        if not isinstance(team, str) or not team.strip() or len(team) > 64:
            raise InvalidPayload("'team' must name a team.")
        name = team.strip().lower()
        clean_note = self._clean_note(note)
        if not any(name in a.teams for a in await self.store.list_agents()):
            raise InvalidPayload(f"No agent is in team {name!r}; set teams with POST /api/agents/<username>.")
        conv = await self.store.get_conversation(conversation_id)
        if conv.status is Status.QUEUED and agent.role != "supervisor":
            raise Forbidden("Only a supervisor may move a waiting conversation to another team; claim it first.")
        conv = await self._pass_on(
            conversation_id, agent, Move.TEAM_TRANSFERRED, clean_note, f"Transferred to the {name} team", team=name,
            system_text=f"I'm passing you to our {name} team; someone from there will be with you shortly.",
        )
        await self.route_queue()
        return conv

    async def escalate(self, conversation_id: str, agent: Agent, note: Any = None) -> Conversation:
        """Pass a conversation to a supervisor: the least-loaded available one (any supervisor
        when none is available), never the one asking. The assignee, or anyone while it waits."""
        clean_note = self._clean_note(note)
        conv = await self.store.get_conversation(conversation_id)
        self._check_owner(conv, agent)
        supervisors = [a for a in await self.store.list_agents()
                       if a.role == "supervisor" and a.username != agent.username]
        if not supervisors:
            raise NoSupervisor("There is no supervisor to escalate to; create one with create-agent --supervisor.")
        loads = await self.store.agent_loads()
        chosen = min(supervisors, key=lambda a: (a.availability is not Availability.AVAILABLE,
                                                 loads.get(a.username, 0), a.username))
        return await self._pass_on(
            conversation_id, agent, Move.ESCALATED, clean_note, f"Escalated to {chosen.display_name}",
            assign_to=(chosen.username, chosen.display_name), system_text=f"{chosen.display_name} joined the chat",
        )

    async def directory(self) -> dict[str, Any]:
        """Who a conversation can be passed to: every agent and team, with who is available."""
        agents = await self.store.list_agents()
        teams: dict[str, dict[str, Any]] = {}
        for a in agents:
            for t in a.teams:
                row = teams.setdefault(t, {"name": t, "available": 0, "agents": 0})
                row["agents"] += 1
                row["available"] += a.availability is Availability.AVAILABLE
        return {
            "agents": [{"username": a.username, "display_name": a.display_name, "role": a.role,
                        "availability": a.availability.value, "teams": list(a.teams)} for a in agents],
            "teams": sorted(teams.values(), key=lambda t: t["name"]),
        }

    # -- nobody there: desk status, waiting visitors' choices, offline tickets -------------------
    async def desk_status(self) -> dict[str, Any]:
        """Whether a person can take a handoff now, sent to the bot with every turn
        (``metadata.handoff_desk``): ``why`` is None, ``no_agents`` or ``closed``."""
        t = self.clock()
        if self._desk is not None and 0 <= t - self._desk[0] < 1.0:
            return self._desk[1]
        is_open = self.hours.is_open(t) if self.hours else True
        available = sum(1 for a in await self.store.list_agents() if a.availability is Availability.AVAILABLE)
        why = None if is_open and available else ("closed" if not is_open else "no_agents")
        status = {"open": is_open, "agents_available": available, "why": why,
                  "hours": self.hours.describe() if self.hours else None}
        self._desk = (t, status)
        return status

    async def visitor_choice(self, conversation_id: str, choice: VisitorChoice) -> bool:
        """A visitor waiting in the queue chose: back to the bot, leave a message, or keep
        waiting. Acted on only while nobody has claimed the conversation (an agent who has it
        deals with the visitor's words). Returns whether anything changed."""
        if choice is VisitorChoice.KEEP_WAITING:
            noted = await self.store.note_timeline(
                conversation_id, "keep_waiting", "visitor", require_status=Status.QUEUED,
                system_text=KEEP_WAITING_TEXT, system_payload={"handoff": {"status": Status.QUEUED.value}},
            )
            if noted is None:
                return False
            await self._publish(noted[2])
            self.on_outbox(conversation_id)
            return True
        payload = {"agent": "", "agent_name": "", "outcome": choice.handback_outcome, "note": "", "facts": {}}
        try:
            _conv, _entry, events = await self.store.transition(
                conversation_id, Move.CANCELLED, "visitor", detail={"choice": choice.value},
                outbox=(OutboxKind.HANDBACK, payload),
            )
        except InvalidTransition:
            return False  # claimed (or resolved) meanwhile: the agent has the visitor now
        await self._publish(events)
        self.on_outbox(conversation_id)
        return True

    async def sweep_unclaimed(self) -> list[str]:
        """Conversations queued longer than ``unclaimed_after_s``: once per queueing, offer the
        visitor to keep waiting, leave a message or go back to the bot, and alert the agents again
        (the ``unclaimed`` timeline event). Run periodically by the gateway."""
        after = self.settings.unclaimed_after_s
        if after <= 0:
            return []
        t = self.clock()
        offered = []
        for conv in await self.store.unclaimed_conversations(t - after, UNCLAIMED):
            waited = round(t - (conv.queued_at or t))
            noted = await self.store.note_timeline(
                conv.id, UNCLAIMED, "system", detail={"waited_s": waited}, require_status=Status.QUEUED,
                once_per_queueing=True, system_text=UNCLAIMED_TEXT,
                system_payload={"quick_replies": UNCLAIMED_REPLIES,
                                "handoff": {"status": Status.QUEUED.value, "unclaimed": True}},
            )
            if noted is not None:
                await self._publish(noted[2])
                self.on_outbox(conv.id)
                offered.append(conv.id)
                log.info("conversation %s waited %d s unclaimed: visitor offered a choice, agents alerted", conv.id, waited)
        return offered

    async def record_ticket(self, conversation_id: str, data: Mapping[str, Any]) -> Optional[Ticket]:
        """The bot collected a contact and an issue (``offline_ticket`` payload of
        ``action_submit_ticket``): an open ticket in the inbox's Tickets tab. A malformed payload
        is logged and dropped (the bot path fails open), never half-stored."""
        key, email, issue = data.get("key"), data.get("email"), data.get("issue")
        why = str(data.get("why"))
        if why not in {w.value for w in TicketWhy}:
            why = TicketWhy.NO_AGENTS.value
        if not (isinstance(key, str) and TICKET_KEY.match(key) and isinstance(email, str) and email.strip()
                and isinstance(issue, str) and issue.strip()):
            log.error("offline ticket of %s dropped: it needs a key, an email and an issue: %r", conversation_id, data)
            return None
        raw = data.get("handoff")
        handoff = None
        if isinstance(raw, Mapping):
            try:
                priority = int(raw.get("priority") or 2)
            except (TypeError, ValueError):
                priority = 2
            handoff = Handoff(
                reason=str(raw.get("reason") or "offline"), priority=max(1, min(priority, URGENT)),
                team=raw.get("team") if isinstance(raw.get("team"), str) else None,
                evidence=_mapping(raw.get("evidence")),
                summary=_mapping(raw.get("summary")),
            )
        # A long issue is kept whole (nothing a visitor wrote is lost), within a sane bound.
        ticket, event = await self.store.add_ticket(
            conversation_id, key, email=email.strip()[:MAX_EMAIL_CHARS],
            issue=issue.strip()[: 4 * self.settings.max_message_chars], why=why, handoff=handoff,
        )
        if event is not None:
            await self._publish([event])
        return ticket

    async def tickets(self, status: Any = "open") -> list[Ticket]:
        if status not in ("open", "done", "all"):
            raise InvalidPayload("'status' must be open, done or all.")
        return await self.store.tickets(None if status == "all" else str(status))

    async def close_ticket(self, ticket_id: int, agent: Agent, note: Any = None) -> Ticket:
        ticket, event = await self.store.close_ticket(ticket_id, agent.username, agent.display_name,
                                                      self._clean_note(note))
        await self._publish([event])
        return ticket

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
            self.on_outbox(conversation_id, line=True)
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
