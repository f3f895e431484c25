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


def user(text: str, intent: str, confidence: float = 0.97, **entities: Any) -> dict[str, Any]:
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


def action_call(action: str, events: list[dict[str, Any]], slots: dict[str, Any] | None = None,
                active_loop: str | None = None) -> dict[str, Any]:
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
            "active_loop": {"name": active_loop} if active_loop else {},
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
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots == {"handoff_trigger": None, "handoff_reason": "explicit_request"}


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
    assert {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}["handoff_reason"] == "repeated_failure"


BILLING_TRIGGER = {
    "reason": "billing_dispute", "priority": 3, "team": "billing",
    "evidence": {"triggers": ["billing_dispute"], "topic": "billing_dispute", "confidence": 0.97,
                 "sentiment_trend": [0.0, -0.5], "customer_tier": "vip"},
}


async def test_handoff_uses_the_policys_trigger_and_clears_it(executor: ActionExecutor) -> None:
    events = ORDER_THEN_HUMAN[:-1] + [user("you charged me twice for 77123", "billing_dispute", 0.97),
                                      {"event": "slot", "name": "handoff_trigger", "value": BILLING_TRIGGER}]
    result = await executor.run(action_call("action_handoff", events, {"order_number": "77123", "handoff_trigger": BILLING_TRIGGER}))

    handoff = result["responses"][1]["custom"]["handoff"]
    assert (handoff["reason"], handoff["priority"], handoff["team"]) == ("billing_dispute", 3, "billing")
    assert handoff["evidence"]["topic"] == "billing_dispute" and handoff["evidence"]["intent"] == "billing_dispute"
    assert handoff["summary"]["headline"].startswith("Disputes a charge (order 77123)")
    assert handoff["summary"]["facts"]["customer_tier"] == "vip"
    assert "VIP customer" in handoff["summary"]["text"]
    slots = {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}
    assert slots["handoff_trigger"] is None and slots["handoff_reason"] == "billing_dispute"


async def test_handoff_parks_an_active_form_before_pausing(executor: ActionExecutor) -> None:
    events = [user("where is my order", "order_status"),
              bot("utter_ask_order_number", "What's your order number?"),
              {"event": "action", "name": "action_listen"},
              user("no idea, get me a person", "request_human")]
    result = await executor.run(action_call("action_handoff", events, {"requested_slot": "order_number"},
                                            active_loop="order_status_form"))

    kinds = [(e["event"], e.get("name"), e.get("value")) for e in result["events"]]
    assert ("slot", "interrupted_form", "order_status_form") in kinds
    assert kinds.index(("active_loop", None, None)) < kinds.index(("pause", None, None))
    assert ("slot", "requested_slot", None) in kinds


async def test_handoff_asks_the_configured_summariser_and_keeps_the_summary_if_it_fails(
    executor: ActionExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_summary import fake_llm

    with fake_llm("Wants order 77123 after a week of waiting; asked for a person.") as (url, requests):
        monkeypatch.setenv("HANDOFF_SUMMARIZER_URL", url)
        result = await executor.run(action_call("action_handoff", ORDER_THEN_HUMAN, {"order_number": "77123"}))
    summary = result["responses"][1]["custom"]["handoff"]["summary"]
    assert summary["text"] == "Wants order 77123 after a week of waiting; asked for a person."
    assert summary["generated_by"] == "http:openai" and "77123" in summary["deterministic_text"]
    assert "it's been a week" in requests[0]["messages"][1]["content"]

    monkeypatch.setenv("HANDOFF_SUMMARIZER_URL", "http://127.0.0.1:9/v1/chat/completions")  # nothing listens
    monkeypatch.setenv("HANDOFF_SUMMARIZER_TIMEOUT", "0.5")
    result = await executor.run(action_call("action_handoff", ORDER_THEN_HUMAN, {"order_number": "77123"}))
    summary = result["responses"][1]["custom"]["handoff"]["summary"]
    assert summary["generated_by"] == "deterministic" and summary["text"].startswith("Asking about order 77123")


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


async def test_handback_asks_for_a_rating_with_buttons(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_handback", handback_events(handoff_outcome="resolved", handoff_agent="Sarah")))

    (message,) = result["responses"]
    response = DOMAIN.responses[message["response"]][0]
    assert "rate the help" in response["text"]
    assert [b["payload"] for b in response["buttons"]] == [f'/rate{{"rating": {n}}}' for n in range(1, 6)]


@pytest.mark.parametrize(("outcome", "kept"), [("continue", True), ("resolved", False), ("follow_up", False)])
async def test_handback_keeps_an_interrupted_form_only_to_continue_with_the_bot(
    executor: ActionExecutor, outcome: str, kept: bool
) -> None:
    result = await executor.run(action_call("action_handback", handback_events(handoff_outcome=outcome),
                                            {"interrupted_form": "order_status_form"}))
    cleared = {"event": "slot", "name": "interrupted_form", "value": None}
    assert any(cleared.items() <= e.items() for e in result["events"]) is not kept


def rating_events(text: str, intent: str = "rate", **entities: Any) -> list[dict[str, Any]]:
    return handback_events(handoff_outcome="continue", handoff_agent="Sarah") + [
        {"event": "action", "name": "action_handback"},
        bot("utter_handback_continue", "Sarah has left the chat. How would you rate the help you got?"),
        {"event": "action", "name": "action_listen"},
        user(text, intent, 1.0, **entities),
    ]


@pytest.mark.parametrize(
    ("text", "entities", "rating"),
    [('/rate{"rating": 4}', {"rating": 4}, 4), ("5 stars", {}, 5), ("I'd give it a five", {}, 5), ("2, not great", {}, 2)],
)
async def test_the_rating_is_recorded_from_the_button_or_the_words(
    executor: ActionExecutor, text: str, entities: dict[str, Any], rating: int
) -> None:
    result = await executor.run(action_call("action_record_rating", rating_events(text, **entities)))

    assert {"event": "slot", "name": "handoff_rating", "value": float(rating)}.items() <= result["events"][0].items()
    (message,) = result["responses"]
    assert message["response"] == ("utter_rating_thanks_good" if rating >= 4 else "utter_rating_thanks_bad")
    if rating >= 4:
        assert f"rating us {rating} out of 5" in rendered(message)


async def test_a_rating_resumes_the_form_the_handoff_interrupted(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_record_rating", rating_events("4"),
                                            {"interrupted_form": "order_status_form", "order_number": "77124"}))

    assert [m["response"] for m in result["responses"]] == ["utter_rating_thanks_good", "utter_resume_form"]
    assert result["events"][-2:] == [
        {"event": "slot", "timestamp": None, "name": "interrupted_form", "value": None},
        {"event": "followup", "timestamp": None, "name": "order_status_form"},
    ]


async def test_a_rating_out_of_range_is_asked_again_and_one_without_a_handback_is_not_understood(
    executor: ActionExecutor,
) -> None:
    again = await executor.run(action_call("action_record_rating", rating_events("7 out of 10")))
    stray = await executor.run(action_call("action_record_rating", [user("5", "rate", 0.9)]))

    assert again["events"] == [] and again["responses"][0]["response"] == "utter_ask_rating"
    assert stray["events"] == [] and stray["responses"][0]["response"] == "utter_default"


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
