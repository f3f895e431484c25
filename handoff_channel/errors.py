"""The error tree. Exceptions carry data; the HTTP edge maps them to status codes in one place.

    HandoffError
     ├── ConversationNotFound   404
     ├── NotFound               404
     ├── InvalidPayload         400   (MessageTooLong, PayloadTooLarge: 413)
     ├── Unauthorized           401
     ├── Forbidden              403
     ├── Conflict               409   (InvalidTransition, AlreadyAssigned, NotAssignee)
     └── BackendUnavailable     503
"""

from __future__ import annotations

from typing import Any, Optional


class HandoffError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return {"error": body}


class ConversationNotFound(HandoffError):
    status = 404
    code = "conversation_not_found"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"No conversation {conversation_id!r}.")


class NotFound(HandoffError):
    status = 404
    code = "not_found"


class InvalidPayload(HandoffError):
    status = 400
    code = "invalid_payload"


class InvalidJson(InvalidPayload):
    code = "invalid_json"


class MessageTooLong(InvalidPayload):
    code = "message_too_long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The message has {length} characters; the limit is {limit}.", length=length, limit=limit
        )


class PayloadTooLarge(InvalidPayload):
    status = 413
    code = "payload_too_large"


class Unauthorized(HandoffError):
    status = 401
    code = "unauthorized"


class Forbidden(HandoffError):
    status = 403
    code = "forbidden"


class Conflict(HandoffError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"

    def __init__(self, conversation_id: str, status: str, move: str) -> None:
        super().__init__(
            f"Conversation {conversation_id!r} is {status}; it cannot be {move.replace('_', ' ')}.",
            status=status,
            move=move,
        )


class AlreadyAssigned(Conflict):
    code = "already_assigned"

    def __init__(self, conversation_id: str, assignee: Optional[str], assignee_name: Optional[str] = None) -> None:
        super().__init__(
            f"Conversation {conversation_id!r} is already assigned to {assignee_name or assignee}.",
            assignee=assignee, assignee_name=assignee_name or assignee,
        )


class NotAssignee(Conflict):
    code = "not_assignee"

    def __init__(self, conversation_id: str, assignee: Optional[str], assignee_name: Optional[str] = None) -> None:
        who = f"assigned to {assignee_name or assignee}" if assignee else "not assigned to anyone"
        super().__init__(
            f"Conversation {conversation_id!r} is {who}: claim it before replying.",
            assignee=assignee, assignee_name=assignee_name or assignee,
        )


class NoSupervisor(Conflict):
    code = "no_supervisor"


class TicketAlreadyDone(Conflict):
    code = "ticket_already_done"


class BackendUnavailable(HandoffError):
    status = 503
    code = "backend_unavailable"
