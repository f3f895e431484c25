"""What the service needs from persistence. One adapter (SQL) serves SQLite and PostgreSQL; the port
exists so the service and its tests never see SQL."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Protocol, Sequence

from ..models import (
    Agent,
    Availability,
    CannedResponse,
    Conversation,
    Event,
    Handoff,
    Message,
    Move,
    OutboxItem,
    OutboxKind,
    Role,
    Status,
    Ticket,
    TimelineEntry,
)


class ConversationStore(Protocol):
    @property
    def shared(self) -> bool:
        """Whether several gateway processes may share this store."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # conversations
    async def get_or_create_conversation(
        self, conversation_id: str, metadata: Optional[Mapping[str, Any]] = None
    ) -> Conversation: ...

    async def get_conversation(self, conversation_id: str) -> Conversation: ...

    async def update_metadata(self, conversation_id: str, metadata: Mapping[str, Any]) -> None: ...

    async def list_conversations(
        self, statuses: Optional[Iterable[Status]] = None, assignee: Optional[str] = None,
        limit: int = 200,
    ) -> list[Conversation]: ...

    async def messages(self, conversation_id: str, after_seq: int = 0) -> list[Message]: ...

    async def timeline(self, conversation_id: str) -> list[TimelineEntry]: ...

    async def add_message(
        self,
        conversation_id: str,
        role: Role,
        text: str,
        *,
        author: Optional[str] = None,
        author_name: Optional[str] = None,
        payload: Optional[Mapping[str, Any]] = None,
        meta: Optional[Mapping[str, Any]] = None,
        client_id: Optional[str] = None,
        route: Optional[Callable[[Conversation], Optional[OutboxKind]]] = None,
    ) -> tuple[Message, Optional[Event]]:
        """Store a message and its feed event in one transaction. ``route`` sees the conversation
        under its row lock and may raise to refuse the message, or name the Rasa outbox item to
        queue for it. With a ``client_id`` already stored for this conversation, return the stored
        message and no event: retries are idempotent."""
        ...

    async def get_message(self, message_id: int) -> Optional[Message]: ...

    async def set_message_meta(self, message_id: int, meta: Mapping[str, Any]) -> Optional[Event]: ...

    async def transition(
        self,
        conversation_id: str,
        move: Move,
        actor: str,
        *,
        actor_name: Optional[str] = None,
        detail: Optional[Mapping[str, Any]] = None,
        handoff: Optional[Handoff] = None,
        require_assignee: Optional[str] = None,
        outbox: Optional[tuple[OutboxKind, Mapping[str, Any]]] = None,
        system_text: Optional[str] = None,
        assign_to: Optional[tuple[str, str]] = None,
        team: Optional[str] = None,
    ) -> tuple[Conversation, TimelineEntry, list[Event]]:
        """Apply one move of the state machine atomically. CLAIMED, TRANSFERRED and ESCALATED
        assign the conversation to ``assign_to`` (username, display name), by default the actor; a
        claim's timeline entry records ``waited_s``, how long the conversation was queued.
        TEAM_TRANSFERRED puts it back in the queue for ``team``. Raises InvalidTransition,
        AlreadyAssigned or NotAssignee when the conversation is not in a state that allows it."""
        ...

    async def note_timeline(
        self,
        conversation_id: str,
        kind: str,
        actor: str,
        *,
        actor_name: Optional[str] = None,
        detail: Optional[Mapping[str, Any]] = None,
        require_status: Optional[Status] = None,
        once_per_queueing: bool = False,
        system_text: Optional[str] = None,
        system_payload: Optional[Mapping[str, Any]] = None,
    ) -> Optional[tuple[Conversation, TimelineEntry, list[Event]]]:
        """Record something that happened without a status move (an unclaimed wait, a visitor who
        keeps waiting), with an optional system message to the visitor, atomically. None, and
        nothing written, when the conversation is not in ``require_status`` or, with
        ``once_per_queueing``, an entry of this kind exists since it was last queued."""
        ...

    async def unclaimed_conversations(self, queued_before: float, kind: str) -> list[Conversation]:
        """Queued conversations queued at or before ``queued_before`` with no ``kind`` timeline
        entry since they were queued, longest waiting first."""
        ...

    # offline tickets
    async def add_ticket(
        self, conversation_id: str, key: str, *, email: str, issue: str, why: str,
        handoff: Optional[Handoff],
    ) -> tuple[Ticket, Optional[Event]]:
        """Store an open ticket and its ``ticket_created`` feed event; the same ``key`` again
        returns the stored ticket and no event (the bot's retries are idempotent)."""
        ...

    async def tickets(self, status: Optional[str] = None, limit: int = 200) -> list[Ticket]:
        """Newest first."""
        ...

    async def close_ticket(self, ticket_id: int, actor: str, actor_name: str, note: str = "") -> tuple[Ticket, Event]:
        """Mark an open ticket done. NotFound, or TicketAlreadyDone (409)."""
        ...

    async def mark_delivered(self, conversation_id: str, seq: int) -> None: ...

    async def mark_delivered_many(self, marks: Mapping[str, int]) -> None:
        """``mark_delivered`` for each conversation id -> seq, in one transaction."""
        ...

    async def rewind_delivered(self, conversation_id: str, seq: int) -> None:
        """Lower the visitor's delivery mark to ``seq`` (never raise it): what was sent after it went
        to a socket that died, so it may never have arrived."""
        ...

    # feed
    async def events_after(self, last_id: int, limit: int = 500) -> list[Event]: ...

    async def last_event_id(self) -> int: ...

    # outbox to Rasa
    async def pending_outbox(self, conversation_id: str) -> list[OutboxItem]: ...

    async def outbox_work(
        self, conversation_id: str
    ) -> tuple[Optional[Conversation], list[OutboxItem], dict[int, Message]]:
        """``pending_outbox`` with the conversation (None if gone; also None when nothing is
        pending) and the messages the items name, by id, read in one go."""
        ...

    async def conversations_with_pending_outbox(self, exclude_leased_at: Optional[float] = None) -> list[str]: ...

    async def acquire_lease(self, conversation_id: str, owner: str, ttl_s: float) -> bool: ...

    async def release_lease(self, conversation_id: str, owner: str) -> None: ...

    async def finish_outbox(self, item_ids: Sequence[int]) -> None: ...

    async def bump_outbox_attempts(self, item_ids: Sequence[int]) -> None: ...

    # agents
    async def create_agent(
        self, username: str, display_name: str, password_hash: str, role: str = "agent",
        *, capacity: int = 5, teams: Sequence[str] = (),
    ) -> Agent: ...

    async def update_agent(
        self, username: str, *, capacity: Optional[int] = None, teams: Optional[Sequence[str]] = None
    ) -> Agent:
        """Raises NotFound for an unknown agent."""
        ...

    async def touch_agent(self, username: str, at: float) -> None:
        """Record a heartbeat from the agent's inbox."""
        ...

    async def mark_silent_agents_away(self, silent_since: float) -> list[Agent]: ...

    async def agent_loads(self) -> dict[str, int]:
        """Assigned conversations per agent (agents with none are absent)."""
        ...

    async def recent_waits(self, limit: int) -> list[float]:
        """How long (seconds) the last ``limit`` claimed conversations had been queued, newest first."""
        ...

    async def set_password(self, username: str, password_hash: str) -> None: ...

    async def agent_credentials(self, username: str) -> Optional[tuple[Agent, str]]: ...

    async def get_agent(self, username: str) -> Optional[Agent]: ...

    async def list_agents(self) -> list[Agent]: ...

    async def set_availability(self, username: str, availability: Availability) -> Agent: ...

    async def canned_responses(self) -> list[CannedResponse]: ...

    async def add_canned_response(self, shortcut: str, text: str, created_by: Optional[str]) -> CannedResponse: ...

    async def delete_canned_response(self, canned_id: int) -> None: ...

    async def create_session(self, token_hash: str, username: str, expires_at: float) -> None: ...

    async def session_agent(self, token_hash: str, now: float) -> Optional[Agent]: ...

    async def delete_session(self, token_hash: str) -> None: ...
