"""``action_order_status``: tell the visitor where their order is, or ask for its number."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

ORDER_NUMBER = re.compile(r"\d{5,8}")
STATUSES = ("packed", "shipped", "delivered")


def order_status(order_number: str) -> str:
    """The status of an order: one of ``STATUSES``.

    A stand-in for the shop's order system, and deterministic on purpose so that demos and
    tests always get the same answer for the same number.
    """
    return STATUSES[int(order_number) % len(STATUSES)]


class ActionOrderStatus(Action):
    """Answers from the ``order_number`` slot (filled from the entity, possibly in an earlier
    turn), or asks for the number. A value that is not 5-8 digits is forgotten, so the next
    number the visitor types is the one that counts."""

    def name(self) -> str:
        return "action_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        raw = tracker.get_slot("order_number")
        number = str(raw).strip() if raw is not None else ""
        if not ORDER_NUMBER.fullmatch(number):
            dispatcher.utter_message(response="utter_ask_order_number")
            return [SlotSet("order_number", None)] if raw is not None else []
        # The number is passed explicitly: responses are filled before this action's events
        # are applied, and the slot may have been set in this very turn.
        dispatcher.utter_message(response=f"utter_order_status_{order_status(number)}", order_number=number)
        return []
