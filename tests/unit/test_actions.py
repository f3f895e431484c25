"""The bot's custom actions, run in process the way the action server runs them.

rasa-sdk's ActionExecutor takes the same JSON that Rasa POSTs to the action server, so these tests
exercise the real registration, tracker parsing and response shapes without a server.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
sys.path.insert(0, str(BOT_DIR))  # the action server runs from bot/ with `--actions actions`

from rasa.core.nlg import TemplatedNaturalLanguageGenerator  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa_sdk.executor import ActionExecutor  # noqa: E402

pytestmark = pytest.mark.asyncio

DOMAIN = Domain.load(str(BOT_DIR / "domain.yml"))


@pytest.fixture(scope="module")
def executor() -> ActionExecutor:
    ex = ActionExecutor()
    ex.register_package("actions")
    return ex


def user(text: str, intent: str, confidence: float = 0.97, **entities: str) -> dict[str, Any]:
    return {
        "event": "user", "text": text, "timestamp": 1700000000.0, "input_channel": "handoff",
        "parse_data": {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": [{"name": intent, "confidence": confidence}],
            "entities": [{"entity": k, "value": v} for k, v in entities.items()],
        },
    }


def bot(utter_action: str, text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text, "metadata": {"utter_action": utter_action},
            "data": {"buttons": None}}


def action_call(action: str, events: list[dict[str, Any]], slots: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body Rasa POSTs to the action server (RemoteAction._action_call_format)."""
    latest = next(e for e in reversed(events) if e["event"] == "user")
    all_slots = {name: None for name in DOMAIN.as_dict()["slots"]}
    all_slots.update(slots or {})
    return {
        "next_action": action,
        "sender_id": "conversation-1",
        "version": "3.6.21",
        "domain": DOMAIN.as_dict(),
        "tracker": {
            "sender_id": "conversation-1",
            "slots": all_slots,
            "latest_message": latest["parse_data"],
            "events": events,
            "paused": False,
            "latest_action_name": "action_listen",
            "active_loop": {},
        },
    }


def rendered(response: dict[str, Any], slots: dict[str, Any] | None = None) -> str:
    """The text the visitor sees: Rasa fills the response from the slots and the message's extras."""
    extras = {k: v for k, v in response.items() if k not in ("response", "text", "buttons", "template")}
    message = TemplatedNaturalLanguageGenerator(DOMAIN.responses).generate_from_slots(
        response["response"], slots or {}, "handoff", **extras
    )
    assert message is not None
    return str(message["text"])


ORDER_THEN_HUMAN = [
    {"event": "action", "name": "action_listen"},
    user("where is my order 77123", "order_status", order_number="77123"),
    {"event": "slot", "name": "order_number", "value": "77123"},
    {"event": "action", "name": "action_order_status"},
    bot("utter_order_status_shipped", "Order 77123 is on its way!"),
    {"event": "action", "name": "action_listen"},
    user("it's been a week, I want to talk to someone", "request_human", 0.99),
]


async def test_handoff_ends_with_pause_then_listen(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_handoff", ORDER_THEN_HUMAN, {"order_number": "77123"}))

    events = result["events"]
    assert [e["event"] for e in events[-2:]] == ["pause", "action"]
    assert events[-1]["name"] == "action_listen"
    assert {"event": "slot", "name": "handoff_reason", "value": "explicit_request"}.items() <= events[0].items()


async def test_handoff_tells_the_visitor_then_hands_the_channel_a_summary(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_handoff", ORDER_THEN_HUMAN, {"order_number": "77123"}))

    connecting, payload = result["responses"]
    assert connecting["response"] == "utter_handoff_connecting"
    assert "person" in rendered(connecting)
    handoff = payload["custom"]["handoff"]
    assert handoff["reason"] == "explicit_request" and handoff["priority"] == 2
    assert handoff["summary"]["facts"]["order_number"] == "77123"
    assert "77123" in handoff["summary"]["text"]
    assert handoff["evidence"]["text"] == "it's been a week, I want to talk to someone"


async def test_handoff_after_two_misses_is_a_repeated_failure(executor: ActionExecutor) -> None:
    events = [
        user("blorp fnarg", "nlu_fallback", 0.4), bot("utter_default", "Sorry, I didn't quite get that."),
        {"event": "action", "name": "action_listen"}, user("xqzt vlemp", "nlu_fallback", 0.4),
    ]
    result = await executor.run(action_call("action_handoff", events))

    assert result["responses"][1]["custom"]["handoff"]["reason"] == "repeated_failure"
    assert result["events"][0]["value"] == "repeated_failure"


def handback_events(**entities: str) -> list[dict[str, Any]]:
    """What the channel appends on hand-back: resume, listen, then the external intent."""
    return ORDER_THEN_HUMAN + [
        {"event": "action", "name": "action_handoff"}, {"event": "pause"},
        {"event": "action", "name": "action_listen"},
        {"event": "resume"}, {"event": "action", "name": "action_listen"},
        {**user("EXTERNAL: handoff_done", "handoff_done", 1.0, **entities), "metadata": {"is_external": True}},
    ]


async def test_handback_keeps_the_agents_report_and_confirmed_facts(executor: ActionExecutor) -> None:
    events = handback_events(handoff_outcome="resolved", handoff_agent="Sarah",
                             handoff_note="parcel re-sent", order_number="77124", refund_id="R-9")
    result = await executor.run(action_call("action_handback", events, {"order_number": "77123"}))

    slots = {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}
    assert slots == {"handoff_outcome": "resolved", "handoff_agent": "Sarah",
                     "handoff_note": "parcel re-sent", "order_number": "77124"}  # refund_id: no such slot
    assert not any(e["event"] in ("pause", "resume") for e in result["events"])


@pytest.mark.parametrize(
    ("outcome", "response", "words"),
    [
        ("resolved", "utter_handback_resolved", "Glad Sarah could help"),
        ("follow_up", "utter_handback_follow_up", "follow up"),
        ("continue", "utter_handback_continue", "back with the assistant"),
        ("something_else", "utter_handback_continue", "back with the assistant"),
    ],
)
async def test_handback_tells_the_visitor_by_the_agents_name(
    executor: ActionExecutor, outcome: str, response: str, words: str
) -> None:
    events = handback_events(handoff_outcome=outcome, handoff_agent="Sarah")
    result = await executor.run(action_call("action_handback", events))

    (message,) = result["responses"]
    assert message["response"] == response
    text = rendered(message)
    assert "Sarah" in text and words in text


async def test_handback_without_a_report_still_speaks(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_handback", handback_events(), {"handoff_note": "old note"}))

    slots = {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}
    assert slots == {"handoff_outcome": "continue", "handoff_agent": "our team", "handoff_note": None}
    assert rendered(result["responses"][0]).startswith("our team has left the chat")


async def test_order_status_answers_from_the_number(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_order_status", ORDER_THEN_HUMAN[:3], {"order_number": "77123"}))

    (message,) = result["responses"]
    assert message["response"].startswith("utter_order_status_")
    assert "77123" in rendered(message)
    again = await executor.run(action_call("action_order_status", ORDER_THEN_HUMAN[:3], {"order_number": "77123"}))
    assert again == result  # deterministic: demos and tests see the same status


async def test_order_status_asks_for_the_number_when_missing_or_malformed(executor: ActionExecutor) -> None:
    events = [user("where is my order", "order_status")]
    missing = await executor.run(action_call("action_order_status", events))
    malformed = await executor.run(action_call("action_order_status", events, {"order_number": "12"}))

    assert missing["responses"][0]["response"] == "utter_ask_order_number"
    assert missing["events"] == []
    assert malformed["responses"][0]["response"] == "utter_ask_order_number"
    assert malformed["events"][0]["name"] == "order_number" and malformed["events"][0]["value"] is None
