"""Stepping aside for a person, and coming back.

``action_handoff`` runs when a hand-off trigger fires: HandoffPolicy (config.yml) predicts it and
puts the reason, priority, team and evidence in the ``handoff_trigger`` slot just before. It tells
the visitor a person is coming, hands the channel a ``Handoff`` (reason, priority, team, evidence,
summary) as a custom payload, parks an unfinished form, and pauses the tracker. When the gateway
says nobody can take it (``handoff_desk`` in the message metadata: no agent available, or
outside business hours) it says so at once and starts ``offline_ticket_form`` instead.

``action_handback`` runs on the external intent ``handoff_done``, which the channel triggers when
an agent hands the conversation back. The agent's report arrives as entities; the action keeps it
in slots and tells the visitor the assistant is back, asking for a 1-5 rating in the same message.
The gateway also hands back when the visitor stops waiting (outcomes ``cancelled`` and
``leave_message``).

``action_record_rating`` keeps that rating (slot ``handoff_rating``), thanks the visitor, and
resumes the form the hand-off interrupted when the agent chose "continue with the bot".

Nobody there: ``offline_ticket_form`` asks for an email (``validate_offline_ticket_form``) and the
issue; ``action_submit_ticket`` hands the channel an ``{"offline_ticket": ...}`` custom payload,
which becomes a ticket in the inbox. ``action_leave_message`` starts the form when the visitor asks
to leave a message; ``action_cancel_ticket`` forgets it all when the visitor says "never mind".
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    ConversationPaused,
    EventType,
    FollowupAction,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher

try:
    from handoff_channel.summarizer import apply_summarizer_async, summarizer_from_env
    from handoff_channel.summary import EXPLICIT_REQUEST, build_handoff
except ModuleNotFoundError as error:  # pragma: no cover - a setup mistake, said plainly
    raise ImportError(
        "action_handoff needs handoff_channel.summary: run the action server with the "
        "repository root on PYTHONPATH, e.g. `cd bot && PYTHONPATH=.. rasa run actions`."
    ) from error

#: What an agent reports on hand-back (resolved | follow_up | continue), and what the gateway
#: reports when the visitor stopped waiting in the queue: ``cancelled`` (back to the bot) and
#: ``leave_message`` (leave a message instead, after a long wait).
OUTCOMES = ("resolved", "follow_up", "continue", "cancelled", "leave_message")
DEFAULT_OUTCOME = "continue"
CANCELLED = "cancelled"
LEAVE_MESSAGE = "leave_message"
#: Outcomes after which the bot picks up a form the hand-off interrupted ("resolved" and
#: "follow_up" mean a person dealt with it: asking again would be odd). "continue" waits for the
#: rating first (action_record_rating); "cancelled" resumes it at once.
RESUME_FORM_OUTCOMES = ("continue", CANCELLED)
DEFAULT_AGENT_NAME = "our team"
REPORT_ENTITIES = ("handoff_outcome", "handoff_agent", "handoff_note")
TRIGGER_SLOT = "handoff_trigger"
INTERRUPTED_FORM_SLOT = "interrupted_form"
RATING_SLOT = "handoff_rating"
GOOD_RATING = 4  # and above: "thank you"; below: "sorry it wasn't better"
RATING_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
RATING_IN_TEXT = re.compile(r"\b([1-5]|one|two|three|four|five)\b", re.IGNORECASE)

#: The gateway's word on whether a person can take a hand-off now, in the metadata of every
#: bot-owned visitor message: {"open", "agents_available", "why", "hours"}. Missing means yes.
DESK_KEY = "handoff_desk"
NO_AGENTS = "no_agents"
CLOSED = "closed"
UNCLAIMED = "unclaimed"
VISITOR_REQUEST = "visitor_request"
#: ``why`` values of the offline ticket.
TICKET_WHYS = (NO_AGENTS, CLOSED, UNCLAIMED, VISITOR_REQUEST)
OFFLINE_FORM = "offline_ticket_form"
OFFLINE_HANDOFF_SLOT = "offline_handoff"
TICKET_WHY_SLOT = "ticket_why"
EMAIL_SLOT = "ticket_email"
ISSUE_SLOT = "ticket_issue"
#: Plausible, not RFC 5322: something@domain.tld, no spaces, a dot-separated domain with a
#: 2+ letter top level. Typos such as "jane@example" or "jane.example.com" are refused.
EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
)
EMAIL_EDGES = "<>()[]{}\"'.,;:!?"


def desk_unavailable(latest_message: dict[str, Any]) -> Optional[tuple[str, Optional[str]]]:
    """``(why, hours)`` when the gateway says nobody can take a hand-off now (``why`` is
    ``no_agents`` or ``closed``), else None: a missing or unknown status means a person is there
    (``rasa shell``, ``rasa test``, an older gateway)."""
    metadata = latest_message.get("metadata")
    desk = metadata.get(DESK_KEY) if isinstance(metadata, dict) else None
    if not isinstance(desk, dict) or desk.get("why") not in (NO_AGENTS, CLOSED):
        return None
    hours = desk.get("hours")
    return str(desk["why"]), (hours.strip() or None) if isinstance(hours, str) else None


def plausible_email(text: Any) -> Optional[str]:
    """The first plausible email address in what the visitor typed ("it's jane@example.com"),
    or None."""
    for word in re.split(r"[\s,;]+", str(text or "")):
        candidate = word.strip(EMAIL_EDGES)
        if len(candidate) <= 254 and EMAIL.fullmatch(candidate):
            return candidate
    return None


class ActionHandoff(Action):
    """Tell the visitor a person is coming, describe the conversation for that person, pause.

    The channel takes the ``{"handoff": ...}`` custom payload out of the bot's messages and opens
    the conversation in the inbox. An active form is deactivated and remembered in
    ``interrupted_form`` (a paused form would otherwise swallow the hand-back). The returned
    events end with ``ConversationPaused`` and then ``action_listen``: without the trailing
    ``action_listen`` a later ``/restart`` or a fallback rewind can step back over the pause and
    run the hand-off twice (shared/DESIGN.md §2).

    Nobody there (the message's ``handoff_desk.why`` is ``no_agents`` or ``closed``): no pause
    and no payload. The bot says so at once (``utter_nobody_available``, or
    ``utter_outside_hours`` with the gateway's ``hours``), an active form is dropped, and
    ``offline_ticket_form`` follows. Either way the hand-off is kept in ``offline_handoff``, for
    the ticket the visitor may leave.
    """

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        trigger = tracker.get_slot(TRIGGER_SLOT)
        handoff = build_handoff(tracker.events, tracker.slots, tracker.latest_message,
                                trigger=trigger if isinstance(trigger, dict) else None)
        handoff = await apply_summarizer_async(handoff, tracker.events, summarizer_from_env())
        events: list[EventType] = [
            # Used up: a later hand-off through a rule alone must not inherit this one's reason.
            SlotSet(TRIGGER_SLOT, None),
            SlotSet("handoff_reason", handoff["reason"]),
            SlotSet(OFFLINE_HANDOFF_SLOT, handoff),
        ]
        form = (tracker.active_loop or {}).get("name")
        unavailable = desk_unavailable(tracker.latest_message)
        if unavailable is not None:
            why, hours = unavailable
            if why == CLOSED and hours:
                dispatcher.utter_message(response="utter_outside_hours", hours=hours)
            else:
                dispatcher.utter_message(response="utter_nobody_available")
            if form:
                events += [ActiveLoop(None), SlotSet("requested_slot", None)]
            if tracker.get_slot(INTERRUPTED_FORM_SLOT):
                events.append(SlotSet(INTERRUPTED_FORM_SLOT, None))
            return events + [SlotSet(TICKET_WHY_SLOT, why), FollowupAction(OFFLINE_FORM)]

        dispatcher.utter_message(response="utter_handoff_connecting")
        dispatcher.utter_message(json_message={"handoff": handoff})
        if tracker.get_slot(TICKET_WHY_SLOT):
            events.append(SlotSet(TICKET_WHY_SLOT, None))
        if form:
            events += [SlotSet(INTERRUPTED_FORM_SLOT, form), ActiveLoop(None), SlotSet("requested_slot", None)]
        elif tracker.get_slot(INTERRUPTED_FORM_SLOT):
            events.append(SlotSet(INTERRUPTED_FORM_SLOT, None))
        return events + [ConversationPaused(), ActionExecuted("action_listen")]


class ActionHandback(Action):
    """Keep the agent's report and tell the visitor, by the agent's name, that the bot is back.

    Entities of ``handoff_done``: ``handoff_outcome`` (resolved | follow_up | continue, or
    cancelled | leave_message from the gateway), ``handoff_agent`` (display name),
    ``handoff_note`` (free text), plus any facts the agent confirmed (e.g. ``order_number``).
    Facts are kept only when the domain has a slot of that name; the others stay in the tracker
    as entities of the message.

    The ``utter_handback_<outcome>`` response asks for a 1-5 rating (buttons). A form the hand-off
    interrupted stays parked for ``action_record_rating`` when the outcome is "continue", and is
    dropped otherwise.

    ``cancelled`` (the visitor stopped waiting): "you're back with the assistant", no rating, and
    a form the hand-off interrupted resumes at once. ``leave_message`` (the visitor chose to leave
    a message after a long wait): ``offline_ticket_form`` starts, ``why`` ``unclaimed``.
    """

    def name(self) -> str:
        return "action_handback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        report = _latest_entities(tracker)
        outcome = report.get("handoff_outcome")
        if outcome not in OUTCOMES:
            outcome = DEFAULT_OUTCOME
        agent = report.get("handoff_agent") or DEFAULT_AGENT_NAME
        events: list[EventType] = [
            SlotSet("handoff_outcome", outcome),
            SlotSet("handoff_agent", agent),
            # Always set, so a note from an earlier hand-back never passes for this one's.
            SlotSet("handoff_note", report.get("handoff_note")),
        ]
        slot_names = set((domain or {}).get("slots") or {})
        events += [
            SlotSet(name, value)
            for name, value in report.items()
            if name not in REPORT_ENTITIES and name in slot_names
        ]
        form = tracker.get_slot(INTERRUPTED_FORM_SLOT)
        if form and outcome not in RESUME_FORM_OUTCOMES:
            events.append(SlotSet(INTERRUPTED_FORM_SLOT, None))
        if outcome == LEAVE_MESSAGE:
            dispatcher.utter_message(response="utter_leave_message_start")
            return events + [SlotSet(TICKET_WHY_SLOT, UNCLAIMED), FollowupAction(OFFLINE_FORM)]
        if outcome == CANCELLED:
            dispatcher.utter_message(response="utter_handback_cancelled")
            if form and form in (domain or {}).get("forms", {}):
                dispatcher.utter_message(response="utter_resume_form")
                events += [SlotSet(INTERRUPTED_FORM_SLOT, None), FollowupAction(form)]
            return events
        # The agent's name is passed explicitly: responses are filled from the slots as they were
        # before this action's events are applied.
        dispatcher.utter_message(response=f"utter_handback_{outcome}", handoff_agent=agent)
        return events


class ActionRecordRating(Action):
    """Keep the visitor's 1-5 rating of the help a person gave, thank them, resume a parked form.

    The rating comes from the button payload (``/rate{"rating": 4}``, entity ``rating``) or from
    the typed text ("4", "5 stars", "I'd give it a five"). A rating with no hand-back before it in
    this conversation is not a rating of anyone: the bot says it did not understand.
    """

    def name(self) -> str:
        return "action_record_rating"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if not _had_handback(tracker):
            dispatcher.utter_message(response="utter_default")
            return []
        rating = read_rating(tracker.latest_message)
        if rating is None:
            dispatcher.utter_message(response="utter_ask_rating")
            return []
        events: list[EventType] = [SlotSet(RATING_SLOT, float(rating))]
        if rating >= GOOD_RATING:
            dispatcher.utter_message(response="utter_rating_thanks_good", rating=rating)
        else:
            dispatcher.utter_message(response="utter_rating_thanks_bad", rating=rating)
        form = tracker.get_slot(INTERRUPTED_FORM_SLOT)
        if form and form in (domain or {}).get("forms", {}):
            dispatcher.utter_message(response="utter_resume_form")
            events += [SlotSet(INTERRUPTED_FORM_SLOT, None), FollowupAction(form)]
        return events


class ActionLeaveMessage(Action):
    """The visitor asked to leave a message ("can I leave a message", "just email me") while the
    bot owns the conversation: describe the conversation for the team (as a hand-off would) and
    start ``offline_ticket_form``, ``why`` ``visitor_request``. An active form is dropped."""

    def name(self) -> str:
        return "action_leave_message"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        handoff = build_handoff(tracker.events, tracker.slots, tracker.latest_message,
                                reason=EXPLICIT_REQUEST)
        handoff = await apply_summarizer_async(handoff, tracker.events, summarizer_from_env())
        dispatcher.utter_message(response="utter_leave_message_start")
        events: list[EventType] = [SlotSet(OFFLINE_HANDOFF_SLOT, handoff), SlotSet(TICKET_WHY_SLOT, VISITOR_REQUEST)]
        if (tracker.active_loop or {}).get("name"):
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        return events + [FollowupAction(OFFLINE_FORM)]


class ValidateOfflineTicketForm(FormValidationAction):
    """``offline_ticket_form``: a plausible email address (else ``utter_invalid_email`` and the
    question again) and a non-empty issue."""

    def name(self) -> str:
        return "validate_offline_ticket_form"

    def validate_ticket_email(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        email = plausible_email(slot_value)
        if email is None:
            dispatcher.utter_message(response="utter_invalid_email")
        return {EMAIL_SLOT: email}

    def validate_ticket_issue(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        text = " ".join(str(slot_value or "").split())
        # A button payload ("/handoff_keep_waiting") is not a description of anything.
        if not text or text.startswith("/"):
            return {ISSUE_SLOT: None}
        # Kept whole: the gateway already refuses a visitor message over its limit, with a clear
        # error, and nothing the visitor wrote for the team may be cut.
        return {ISSUE_SLOT: text}


class ActionSubmitTicket(Action):
    """The form is complete: tell the visitor what happens next and hand the channel the ticket.

    The ``{"offline_ticket": {key, email, issue, why, handoff}}`` custom payload becomes a ticket
    in the inbox (the gateway ignores a ``key`` it has seen). ``handoff`` is the one kept in
    ``offline_handoff`` (or, if that is missing, one described now).
    """

    def name(self) -> str:
        return "action_submit_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        email = tracker.get_slot(EMAIL_SLOT)
        issue = tracker.get_slot(ISSUE_SLOT)
        why = tracker.get_slot(TICKET_WHY_SLOT)
        if why not in TICKET_WHYS:
            why = VISITOR_REQUEST
        handoff = tracker.get_slot(OFFLINE_HANDOFF_SLOT)
        if not isinstance(handoff, dict):
            handoff = build_handoff(tracker.events, tracker.slots, tracker.latest_message, reason=EXPLICIT_REQUEST)
        ticket = {"key": uuid.uuid4().hex, "email": email, "issue": issue, "why": why, "handoff": handoff}
        dispatcher.utter_message(response="utter_ticket_created", ticket_email=email)
        dispatcher.utter_message(json_message={"offline_ticket": ticket})
        # The email stays: a second message in this conversation goes to the same address.
        return [SlotSet(ISSUE_SLOT, None), SlotSet(OFFLINE_HANDOFF_SLOT, None), SlotSet(TICKET_WHY_SLOT, None)]


class ActionCancelTicket(Action):
    """The visitor stopped ``offline_ticket_form`` ("never mind"): say OK, send nothing, forget
    what they typed. The rule that runs this deactivates the form first."""

    def name(self) -> str:
        return "action_cancel_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_ticket_cancelled")
        return [SlotSet(name, None) for name in (EMAIL_SLOT, ISSUE_SLOT, OFFLINE_HANDOFF_SLOT, TICKET_WHY_SLOT)]


def read_rating(latest_message: dict[str, Any]) -> Optional[int]:
    """1..5 from the ``rating`` entity (buttons) or the first rating word or digit typed."""
    for entity in latest_message.get("entities") or []:
        if entity.get("entity") == "rating":
            value = _as_rating(entity.get("value"))
            if value is not None:
                return value
    match = RATING_IN_TEXT.search(str(latest_message.get("text") or ""))
    return _as_rating(match.group(1)) if match else None


def _as_rating(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    text = str(value).strip().lower()
    number = RATING_WORDS.get(text)
    if number is None:
        try:
            number = int(float(text))
        except ValueError:
            return None
    return number if 1 <= number <= 5 else None


def _had_handback(tracker: Tracker) -> bool:
    return any(e.get("event") == "action" and e.get("name") == "action_handback" for e in tracker.events)


def _latest_entities(tracker: Tracker) -> dict[str, str | None]:
    """Entities of the latest message by name; when a name repeats, the last value wins."""
    found: dict[str, str | None] = {}
    for entity in tracker.latest_message.get("entities") or []:
        name = entity.get("entity")
        if name:
            value = entity.get("value")
            found[name] = None if value is None else str(value)
    return found
