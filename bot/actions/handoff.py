"""Stepping aside for a person, and coming back.

``action_handoff`` runs when a hand-off rule fires (data/rules.yml). It tells the visitor a person
is coming, hands the channel a ``Handoff`` (reason, priority, evidence, summary) as a custom
payload, and pauses the tracker.

``action_handback`` runs on the external intent ``handoff_done``, which the channel triggers when
an agent hands the conversation back. The agent's report arrives as entities; the action keeps it
in slots and tells the visitor the assistant is back.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

try:
    from handoff_channel.summary import build_handoff
except ModuleNotFoundError as error:  # pragma: no cover - a setup mistake, said plainly
    raise ImportError(
        "action_handoff needs handoff_channel.summary: run the action server with the "
        "repository root on PYTHONPATH, e.g. `cd bot && PYTHONPATH=.. rasa run actions`."
    ) from error

OUTCOMES = ("resolved", "follow_up", "continue")
DEFAULT_OUTCOME = "continue"
DEFAULT_AGENT_NAME = "our team"
REPORT_ENTITIES = ("handoff_outcome", "handoff_agent", "handoff_note")


class ActionHandoff(Action):
    """Tell the visitor a person is coming, describe the conversation for that person, pause.

    The channel takes the ``{"handoff": ...}`` custom payload out of the bot's messages and opens
    the conversation in the inbox. The returned events end with ``ConversationPaused`` and then
    ``action_listen``: without the trailing ``action_listen`` a later ``/restart`` or a fallback
    rewind can step back over the pause and run the hand-off twice (shared/DESIGN.md §2).
    """

    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        handoff = build_handoff(tracker.events, tracker.slots, tracker.latest_message)
        dispatcher.utter_message(response="utter_handoff_connecting")
        dispatcher.utter_message(json_message={"handoff": handoff})
        return [
            SlotSet("handoff_reason", handoff["reason"]),
            ConversationPaused(),
            ActionExecuted("action_listen"),
        ]


class ActionHandback(Action):
    """Keep the agent's report and tell the visitor, by the agent's name, that the bot is back.

    Entities of ``handoff_done``: ``handoff_outcome`` (resolved | follow_up | continue),
    ``handoff_agent`` (display name), ``handoff_note`` (free text), plus any facts the agent
    confirmed (e.g. ``order_number``). Facts are kept only when the domain has a slot of that name;
    the others stay in the tracker as entities of the message.
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
        # The agent's name is passed explicitly: responses are filled from the slots as they were
        # before this action's events are applied.
        dispatcher.utter_message(response=f"utter_handback_{outcome}", handoff_agent=agent)
        return events


def _latest_entities(tracker: Tracker) -> dict[str, str | None]:
    """Entities of the latest message by name; when a name repeats, the last value wins."""
    found: dict[str, str | None] = {}
    for entity in tracker.latest_message.get("entities") or []:
        name = entity.get("entity")
        if name:
            value = entity.get("value")
            found[name] = None if value is None else str(value)
    return found
