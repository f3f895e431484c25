"""Plain values of the handoff domain: statuses, roles, the allowed status moves, and the records
the store returns. No I/O here, so every rule about "who may do what, when" can be tested alone."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

JSON = Mapping[str, Any]


class Status(str, enum.Enum):
    """Who owns a conversation. ``bot`` and ``resolved`` are bot-owned; ``queued`` and ``assigned``
    are human-owned: while a conversation is human-owned no visitor turn reaches Rasa's policies."""

    BOT = "bot"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"

    @property
    def human_owned(self) -> bool:
        return self in (Status.QUEUED, Status.ASSIGNED)


class Role(str, enum.Enum):
    """Who wrote a message. ``note`` is internal: it never reaches the visitor."""

    VISITOR = "visitor"
    BOT = "bot"
    AGENT = "agent"
    NOTE = "note"
    SYSTEM = "system"

    @property
    def visible_to_visitor(self) -> bool:
        return self in (Role.BOT, Role.AGENT, Role.SYSTEM)


class Move(str, enum.Enum):
    """A status change, named the way a support lead would say it."""

    HANDOFF_REQUESTED = "handoff_requested"
    CLAIMED = "claimed"
    RELEASED = "released"
    HANDED_BACK = "handed_back"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"  # the visitor stopped waiting and went back to the bot
    TRANSFERRED = "transferred"  # one agent passed the conversation to another
    TEAM_TRANSFERRED = "team_transferred"  # back to the queue, for another team
    ESCALATED = "escalated"  # passed to a supervisor


# The one table of allowed moves: (from, move) -> to. Anything else is an InvalidTransition.
TRANSITIONS: dict[tuple[Status, Move], Status] = {
    (Status.BOT, Move.HANDOFF_REQUESTED): Status.QUEUED,
    (Status.RESOLVED, Move.HANDOFF_REQUESTED): Status.QUEUED,
    (Status.QUEUED, Move.CLAIMED): Status.ASSIGNED,
    (Status.ASSIGNED, Move.RELEASED): Status.QUEUED,
    (Status.QUEUED, Move.HANDED_BACK): Status.BOT,
    (Status.ASSIGNED, Move.HANDED_BACK): Status.BOT,
    (Status.QUEUED, Move.RESOLVED): Status.RESOLVED,
    (Status.ASSIGNED, Move.RESOLVED): Status.RESOLVED,
    (Status.QUEUED, Move.CANCELLED): Status.BOT,
    (Status.ASSIGNED, Move.TRANSFERRED): Status.ASSIGNED,
    (Status.ASSIGNED, Move.TEAM_TRANSFERRED): Status.QUEUED,
    (Status.QUEUED, Move.TEAM_TRANSFERRED): Status.QUEUED,
    (Status.ASSIGNED, Move.ESCALATED): Status.ASSIGNED,
    (Status.QUEUED, Move.ESCALATED): Status.ASSIGNED,
}

URGENT = 4  # the highest priority: an urgent conversation alerts every agent


def queue_priority(conversation: Conversation, at: float, bump_after_s: float) -> int:
    """The priority a queued conversation is ordered by: the handoff's priority (the reason's
    severity, already raised for VIP customers when it was recorded), plus one once it has waited
    ``bump_after_s`` seconds, capped at ``URGENT``."""
    base = conversation.handoff.priority if conversation.handoff else 0
    waited = at - conversation.queued_at if conversation.queued_at is not None else 0.0
    if conversation.status is Status.QUEUED and bump_after_s > 0 and waited >= bump_after_s:
        base += 1
    return min(base, URGENT)


def median(values: Sequence[float]) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def sources_of(move: Move) -> frozenset[Status]:
    """The statuses a move may start from."""
    return frozenset(src for (src, m) in TRANSITIONS if m is move)


def target_of(current: Status, move: Move) -> Optional[Status]:
    return TRANSITIONS.get((current, move))


class Outcome(str, enum.Enum):
    """How the human stretch ended, as the agent reports it on hand-back."""

    RESOLVED = "resolved"
    FOLLOW_UP = "follow_up"
    CONTINUE = "continue"


class VisitorChoice(str, enum.Enum):
    """What a visitor waiting in the queue may decide (buttons or their own words; the bot's NLU
    reads them). ``cancel`` and ``leave_message`` end the wait; the hand-back tells the bot which."""

    CANCEL = "cancel"
    LEAVE_MESSAGE = "leave_message"
    KEEP_WAITING = "keep_waiting"

    @property
    def handback_outcome(self) -> str:
        """The ``handoff_outcome`` the bot receives (never one an agent can pick)."""
        return {"cancel": "cancelled", "leave_message": "leave_message"}.get(self.value, "")


class TicketWhy(str, enum.Enum):
    """Why a visitor left a message instead of talking to a person."""

    NO_AGENTS = "no_agents"  # nobody was available when the handoff fired
    CLOSED = "closed"  # outside business hours
    UNCLAIMED = "unclaimed"  # they waited, nobody claimed, they chose to leave a message
    VISITOR_REQUEST = "visitor_request"  # they asked to leave a message


def now() -> float:
    return time.time()


@dataclass(frozen=True)
class Handoff:
    """Why and how the bot stepped aside, as ``action_handoff`` reported it."""

    reason: str
    priority: int = 2
    team: Optional[str] = None
    evidence: JSON = field(default_factory=dict)
    summary: JSON = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "priority": self.priority,
            "team": self.team,
            "evidence": dict(self.evidence),
            "summary": dict(self.summary),
        }


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: str
    seq: int
    role: Role
    text: str
    created_at: float
    author: Optional[str] = None
    author_name: Optional[str] = None
    payload: Optional[JSON] = None
    meta: Optional[JSON] = None
    client_id: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Message":
        return cls(
            id=int(d["id"]), conversation_id=str(d["conversation_id"]), seq=int(d["seq"]),
            role=Role(d["role"]), text=str(d["text"]), created_at=float(d["created_at"]),
            author=d.get("author"), author_name=d.get("author_name"), payload=d.get("payload"),
            meta=d.get("meta"), client_id=d.get("client_id"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "role": self.role.value,
            "text": self.text,
            "author": self.author,
            "author_name": self.author_name,
            "payload": dict(self.payload) if self.payload else None,
            "meta": dict(self.meta) if self.meta else None,
            "client_id": self.client_id,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class LastMessage:
    role: Role
    text: str
    created_at: float


@dataclass(frozen=True)
class Conversation:
    id: str
    status: Status
    created_at: float
    updated_at: float
    assignee: Optional[str] = None
    assignee_name: Optional[str] = None
    handoff: Optional[Handoff] = None
    queued_at: Optional[float] = None
    metadata: JSON = field(default_factory=dict)
    message_count: int = 0
    last_message: Optional[LastMessage] = None
    visitor_delivered_seq: int = 0

    @property
    def visitor_label(self) -> str:
        custom = self.metadata.get("customData") if isinstance(self.metadata, Mapping) else None
        if isinstance(custom, Mapping):
            for key in ("name", "email", "user_name"):
                value = custom.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()[:60]
        return f"Visitor {self.id[:6]}"

    @property
    def visitor(self) -> dict[str, Any]:
        """What the embedding page told us about the visitor (widget customData), plain values only."""
        custom = self.metadata.get("customData") if isinstance(self.metadata, Mapping) else None
        custom = custom if isinstance(custom, Mapping) else {}
        out: dict[str, Any] = {}
        for key in ("name", "email", "tier", "language"):
            value = custom.get(key)
            if isinstance(value, (str, int, float)) and str(value).strip():
                out[key] = str(value).strip()[:120]
        return out

    def summary_dict(self) -> dict[str, Any]:
        """The row an inbox list shows."""
        last = self.last_message
        return {
            "id": self.id,
            "status": self.status.value,
            "visitor_label": self.visitor_label,
            "visitor": self.visitor,
            "reason": self.handoff.reason if self.handoff else None,
            "priority": self.handoff.priority if self.handoff else None,
            "urgent": bool(self.handoff and self.handoff.priority >= URGENT),
            "team": self.handoff.team if self.handoff else None,
            "headline": (self.handoff.summary.get("headline") if self.handoff else None),
            "assignee": self.assignee,
            "assignee_name": self.assignee_name,
            "queued_at": self.queued_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "message_count": self.message_count,
            "last_message": (
                {"role": last.role.value, "text": last.text, "created_at": last.created_at}
                if last
                else None
            ),
        }


@dataclass(frozen=True)
class TimelineEntry:
    id: int
    conversation_id: str
    kind: str
    from_status: Optional[Status]
    to_status: Optional[Status]
    actor: str
    detail: JSON
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "kind": self.kind,
            "from_status": self.from_status.value if self.from_status else None,
            "to_status": self.to_status.value if self.to_status else None,
            "actor": self.actor,
            "detail": dict(self.detail),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Event:
    """One entry of the inbox feed (SSE and poll). Ids increase strictly; ``data`` is what the wire
    carries, so a replay after reconnect is byte-for-byte what a live client saw."""

    id: int
    type: str
    conversation_id: str
    data: JSON
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.data, id=self.id, type=self.type, conversation_id=self.conversation_id,
                    created_at=self.created_at)


class Availability(str, enum.Enum):
    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"


@dataclass(frozen=True)
class Agent:
    username: str
    display_name: str
    role: str = "agent"
    availability: Availability = Availability.AVAILABLE
    capacity: int = 5  # most conversations auto-routing assigns to this agent at once
    teams: tuple[str, ...] = ()
    last_seen_at: Optional[float] = None  # last heartbeat from the agent's inbox

    def as_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "availability": self.availability.value,
            "capacity": self.capacity,
            "teams": list(self.teams),
            "last_seen_at": self.last_seen_at,
        }


class OutboxKind(str, enum.Enum):
    """What the gateway asks of Rasa, in order, per conversation."""

    TURN = "turn"  # a visitor turn for the bot (becomes LOG if a human owns it by then)
    LOG = "log"  # record the human stretch in the tracker, no policies
    HANDBACK = "handback"  # resume the bot and let action_handback speak


@dataclass(frozen=True)
class OutboxItem:
    id: int
    conversation_id: str
    kind: OutboxKind
    payload: JSON
    created_at: float
    attempts: int = 0


@dataclass(frozen=True)
class CannedResponse:
    """A saved reply an agent inserts by typing ``/shortcut``."""

    id: int
    shortcut: str
    text: str
    created_by: Optional[str] = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "shortcut": self.shortcut, "text": self.text, "created_by": self.created_by}


@dataclass(frozen=True)
class Ticket:
    """An offline ticket: a visitor's contact and issue, left when no person could take over."""

    id: int
    key: str  # set by the bot; the same key twice is the same ticket (retries)
    conversation_id: str
    status: str  # open | done
    email: str
    issue: str
    why: str
    handoff: Optional[Handoff]
    visitor_label: str
    created_at: float
    closed_at: Optional[float] = None
    closed_by: Optional[str] = None
    closed_by_name: Optional[str] = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        handoff = self.handoff
        return {
            "id": self.id,
            "key": self.key,
            "conversation_id": self.conversation_id,
            "status": self.status,
            "email": self.email,
            "issue": self.issue,
            "why": self.why,
            "reason": handoff.reason if handoff else None,
            "priority": handoff.priority if handoff else None,
            "team": handoff.team if handoff else None,
            "headline": handoff.summary.get("headline") if handoff else None,
            "summary": dict(handoff.summary) if handoff else {},
            "visitor_label": self.visitor_label,
            "created_at": self.created_at,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "closed_by_name": self.closed_by_name,
            "note": self.note,
        }
