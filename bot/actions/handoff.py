"""Stepping aside for a person, and coming back.

``action_handoff`` runs when a hand-off trigger fires: HandoffPolicy (config.yml) predicts it and
puts the reason, priority, team and evidence in the ``handoff_trigger`` slot just before. It tells
the visitor a person is coming, hands the channel a ``Handoff`` (reason, priority, team, evidence,
summary) as a custom payload, parks an unfinished form, and pauses the tracker.

``action_handback`` runs on the external intent ``handoff_done``, which the channel triggers when
an agent hands the conversation back. The agent's report arrives as entities; the action keeps it
in slots and tells the visitor the assistant is back, asking for a 1-5 rating in the same message.

``action_record_rating`` keeps that rating (slot ``handoff_rating``), thanks the visitor, and
resumes the form the hand-off interrupted when the agent chose "continue with the bot".
"""

from __future__ import annotations

import re
from typing import Any, Optional

from rasa_sdk import Action, Tracker
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
    from handoff_channel.summary import build_handoff
except ModuleNotFoundError as error:  # pragma: no cover - a setup mistake, said plainly
    raise ImportError(
        "action_handoff needs handoff_channel.summary: run the action server with the "
        "repository root on PYTHONPATH, e.g. `cd bot && PYTHONPATH=.. rasa run actions`."
    ) from error

OUTCOMES = ("resolved", "follow_up", "continue")
DEFAULT_OUTCOME = "continue"
#: Outcomes after which the bot picks up a form the hand-off interrupted ("resolved" and
#: "follow_up" mean a person dealt with it: asking again would be odd).
RESUME_FORM_OUTCOMES = ("continue",)
DEFAULT_AGENT_NAME = "our team"
REPORT_ENTITIES = ("handoff_outcome", "handoff_agent", "handoff_note")
TRIGGER_SLOT = "handoff_trigger"
INTERRUPTED_FORM_SLOT = "interrupted_form"
RATING_SLOT = "handoff_rating"
GOOD_RATING = 4  # and above: "thank you"; below: "sorry it wasn't better"
RATING_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
RATING_IN_TEXT = re.compile(r"\b([1-5]|one|two|three|four|five)\b", re.IGNORECASE)


class ActionHandoff(Action):
    """Tell the visitor a person is coming, describe the conversation for that person, pause.

    The channel takes the ``{"handoff": ...}`` custom payload out of the bot's messages and opens
    the conversation in the inbox. An active form is deactivated and remembered in
    ``interrupted_form`` (a paused form would otherwise swallow the hand-back). The returned
    events end with ``ConversationPaused`` and then ``action_listen``: without the trailing
    ``action_listen`` a later ``/restart`` or a fallback rewind can step back over the pause and
    run the hand-off twice (shared/DESIGN.md §2).
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
        dispatcher.utter_message(response="utter_handoff_connecting")
        dispatcher.utter_message(json_message={"handoff": handoff})
        events: list[EventType] = [
            # Used up: a later hand-off through a rule alone must not inherit this one's reason.
            SlotSet(TRIGGER_SLOT, None),
            SlotSet("handoff_reason", handoff["reason"]),
        ]
        form = (tracker.active_loop or {}).get("name")
        if form:
            events += [SlotSet(INTERRUPTED_FORM_SLOT, form), ActiveLoop(None), SlotSet("requested_slot", None)]
        elif tracker.get_slot(INTERRUPTED_FORM_SLOT):
            events.append(SlotSet(INTERRUPTED_FORM_SLOT, None))
        return events + [ConversationPaused(), ActionExecuted("action_listen")]


class ActionHandback(Action):
    """Keep the agent's report and tell the visitor, by the agent's name, that the bot is back.

    Entities of ``handoff_done``: ``handoff_outcome`` (resolved | follow_up | continue),
    ``handoff_agent`` (display name), ``handoff_note`` (free text), plus any facts the agent
    confirmed (e.g. ``order_number``). Facts are kept only when the domain has a slot of that name;
    the others stay in the tracker as entities of the message.

    The ``utter_handback_<outcome>`` response asks for a 1-5 rating (buttons). A form the hand-off
    interrupted stays parked for ``action_record_rating`` when the outcome is "continue", and is
    dropped otherwise.
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
        if tracker.get_slot(INTERRUPTED_FORM_SLOT) and outcome not in RESUME_FORM_OUTCOMES:
            events.append(SlotSet(INTERRUPTED_FORM_SLOT, None))
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
