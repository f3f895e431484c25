"""The bot's custom actions, run in process the way the action server runs them.

rasa-sdk's ActionExecutor takes the same JSON that Rasa POSTs to the action server, so these tests
exercise the real registration, tracker parsing and response shapes without a server.
"""

from __future__ import annotations

import sys
import uuid
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
            # Rasa puts the message's metadata (UserMessage.metadata) in latest_message too.
            "latest_message": {**latest["parse_data"], "metadata": latest.get("metadata") or {}},
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
    assert slots == {"handoff_trigger": None, "handoff_reason": "explicit_request",
                     "offline_handoff": result["responses"][1]["custom"]["handoff"]}


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


# --- nobody there: the visitor leaves a message (contract-issue6 section 2) ------------------------


def with_desk(events: list[dict[str, Any]], why: str | None, hours: str | None = None) -> list[dict[str, Any]]:
    """``events`` with the gateway's desk status in the metadata of the latest visitor message."""
    *before, latest = events
    desk = {"open": why != "closed", "agents_available": 0 if why else 2, "why": why, "hours": hours}
    return [*before, {**latest, "metadata": {"handoff_desk": desk}}]


def slot_events(result: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}


async def test_with_nobody_available_the_bot_says_so_at_once_and_asks_for_a_message(executor: ActionExecutor) -> None:
    events = with_desk(ORDER_THEN_HUMAN, "no_agents")
    result = await executor.run(action_call("action_handoff", events, {"order_number": "77123"}))

    assert [m["response"] for m in result["responses"]] == ["utter_nobody_available"]
    assert "nobody from our team is free" in rendered(result["responses"][0])
    assert not any(e["event"] == "pause" for e in result["events"])  # the bot keeps talking
    slots = slot_events(result)
    assert slots["ticket_why"] == "no_agents" and slots["handoff_trigger"] is None
    kept = slots["offline_handoff"]
    assert kept["reason"] == "explicit_request" and kept["summary"]["facts"]["order_number"] == "77123"
    assert result["events"][-1] == {"event": "followup", "timestamp": None, "name": "offline_ticket_form"}


async def test_outside_business_hours_the_bot_names_the_hours(executor: ActionExecutor) -> None:
    hours = "Mon-Fri 09:00-18:00 (Europe/Berlin)"
    result = await executor.run(action_call("action_handoff", with_desk(ORDER_THEN_HUMAN, "closed", hours)))

    (message,) = result["responses"]
    assert message["response"] == "utter_outside_hours"
    assert f"we're here {hours}." in rendered(message)
    assert slot_events(result)["ticket_why"] == "closed"
    assert result["events"][-1]["name"] == "offline_ticket_form"


async def test_closed_without_hours_still_reads_well(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_handoff", with_desk(ORDER_THEN_HUMAN, "closed", None)))

    (message,) = result["responses"]
    assert message["response"] == "utter_nobody_available" and "{" not in rendered(message)
    assert slot_events(result)["ticket_why"] == "closed"


@pytest.mark.parametrize("why", ["missing", None, "something_new"])
async def test_with_a_person_free_or_no_desk_status_the_handoff_is_as_before(
    executor: ActionExecutor, why: str | None
) -> None:
    events = ORDER_THEN_HUMAN if why == "missing" else with_desk(ORDER_THEN_HUMAN, why)
    result = await executor.run(action_call("action_handoff", events, {"order_number": "77123", "ticket_why": "closed"}))

    connecting, payload = result["responses"]
    assert connecting["response"] == "utter_handoff_connecting"
    assert [e["event"] for e in result["events"][-2:]] == ["pause", "action"]
    slots = slot_events(result)
    # The latest hand-off is kept for a message left later ("leave a message" after a long wait).
    assert slots["offline_handoff"] == payload["custom"]["handoff"]
    assert slots["ticket_why"] is None
    assert not any(e["event"] == "followup" for e in result["events"])


async def test_nobody_available_in_the_middle_of_the_order_form_drops_it(executor: ActionExecutor) -> None:
    events = with_desk([user("where is my order", "order_status"),
                        bot("utter_ask_order_number", "What's your order number?"),
                        {"event": "action", "name": "action_listen"},
                        user("no idea, get me a person", "request_human")], "no_agents")
    result = await executor.run(action_call("action_handoff", events, {"requested_slot": "order_number"},
                                            active_loop="order_status_form"))

    kinds = [(e["event"], e.get("name"), e.get("value")) for e in result["events"]]
    assert ("active_loop", None, None) in kinds and ("slot", "requested_slot", None) in kinds
    assert not any(name == "interrupted_form" and value for _, name, value in kinds)
    assert kinds[-1] == ("followup", "offline_ticket_form", None)


def form_turn(slot: str, text: str, intent: str = "nlu_fallback") -> list[dict[str, Any]]:
    """What Rasa sends validate_offline_ticket_form: the visitor's answer, then the candidate."""
    return [bot(f"utter_ask_{slot}", "?"), {"event": "action", "name": "action_listen"},
            user(text, intent, 0.4), {"event": "slot", "name": slot, "value": text}]


async def validate(executor: ActionExecutor, slot: str, text: str) -> dict[str, Any]:
    events = [{"event": "action", "name": "offline_ticket_form"}, {"event": "active_loop", "name": "offline_ticket_form"},
              *form_turn(slot, text)]
    return await executor.run(action_call("validate_offline_ticket_form", events,
                                          {"requested_slot": slot, slot: text}, active_loop="offline_ticket_form"))


@pytest.mark.parametrize(
    ("typed", "kept"),
    [("jane.doe@example.com", "jane.doe@example.com"),
     ("it's Jane.Doe+shop@mail.example.co.uk.", "Jane.Doe+shop@mail.example.co.uk"),
     ("<j_o@example.de>, thanks", "j_o@example.de")],
)
async def test_a_plausible_email_is_taken_from_what_the_visitor_typed(
    executor: ActionExecutor, typed: str, kept: str
) -> None:
    result = await validate(executor, "ticket_email", typed)

    assert slot_events(result)["ticket_email"] == kept
    assert result["responses"] == []


@pytest.mark.parametrize("typed", ["jane@example", "jane.example.com", "jane@@example.com", "my email is jane",
                                   "jane@exa mple.com", "@example.com", "jane.@example.com", "no"])
async def test_an_implausible_email_is_refused_with_a_clear_message(executor: ActionExecutor, typed: str) -> None:
    result = await validate(executor, "ticket_email", typed)

    assert slot_events(result)["ticket_email"] is None  # the form asks again
    (message,) = result["responses"]
    assert message["response"] == "utter_invalid_email"
    assert "name@example.com" in rendered(message)


async def test_the_issue_is_kept_in_the_visitors_words_but_a_stray_button_is_not_an_issue(executor: ActionExecutor) -> None:
    words = await validate(executor, "ticket_issue", "  my parcel 77123 never\narrived  ")
    button = await validate(executor, "ticket_issue", "/handoff_keep_waiting")

    assert slot_events(words)["ticket_issue"] == "my parcel 77123 never arrived"
    assert slot_events(button)["ticket_issue"] is None


async def test_a_long_issue_reaches_the_team_whole(executor: ActionExecutor) -> None:
    long_issue = ("The order came in three parcels and two were damaged. " * 70).strip()  # ~3,800 characters

    result = await validate(executor, "ticket_issue", long_issue)

    assert slot_events(result)["ticket_issue"] == long_issue


HANDOFF_KEPT = {"reason": "billing_dispute", "priority": 3, "team": "billing",
                "evidence": {"intent": "billing_dispute", "text": "you charged me twice"},
                "summary": {"headline": "Disputes a charge", "text": "Disputes a charge"}}


def ticket_events() -> list[dict[str, Any]]:
    return ORDER_THEN_HUMAN + [{"event": "action", "name": "action_handoff"},
                               {"event": "action", "name": "offline_ticket_form"},
                               *form_turn("ticket_email", "jane@example.com"),
                               *form_turn("ticket_issue", "charged twice for 77123", "billing_dispute"),
                               {"event": "action", "name": "offline_ticket_form"},
                               {"event": "active_loop", "name": None}]


async def test_a_finished_message_becomes_exactly_the_ticket_the_gateway_expects(executor: ActionExecutor) -> None:
    slots = {"ticket_email": "jane@example.com", "ticket_issue": "charged twice for 77123",
             "ticket_why": "no_agents", "offline_handoff": HANDOFF_KEPT}
    result = await executor.run(action_call("action_submit_ticket", ticket_events(), slots))

    told, payload = result["responses"]
    assert told["response"] == "utter_ticket_created"
    assert "reply to jane@example.com" in rendered(told)
    ticket = payload["custom"]["offline_ticket"]
    assert set(payload["custom"]) == {"offline_ticket"}
    assert set(ticket) == {"key", "email", "issue", "why", "handoff"}
    assert uuid.UUID(hex=ticket["key"]).version == 4 and ticket["key"] == uuid.UUID(hex=ticket["key"]).hex
    assert (ticket["email"], ticket["issue"], ticket["why"]) == ("jane@example.com", "charged twice for 77123", "no_agents")
    assert ticket["handoff"] == HANDOFF_KEPT
    # Sent once: the issue and the hand-off are used up, the address stays for a second message.
    assert slot_events(result) == {"ticket_issue": None, "offline_handoff": None, "ticket_why": None}

    again = await executor.run(action_call("action_submit_ticket", ticket_events(), slots))
    assert again["responses"][1]["custom"]["offline_ticket"]["key"] != ticket["key"]  # idempotency is per ticket


async def test_a_ticket_without_a_kept_handoff_still_describes_the_conversation(executor: ActionExecutor) -> None:
    slots = {"ticket_email": "jane@example.com", "ticket_issue": "where is 77123", "order_number": "77123"}
    result = await executor.run(action_call("action_submit_ticket", ticket_events(), slots))

    ticket = result["responses"][1]["custom"]["offline_ticket"]
    assert ticket["why"] == "visitor_request"
    assert ticket["handoff"]["reason"] == "explicit_request"
    assert ticket["handoff"]["summary"]["facts"]["order_number"] == "77123"


async def test_never_mind_in_the_message_form_sends_nothing_and_forgets_it(executor: ActionExecutor) -> None:
    events = ORDER_THEN_HUMAN + [*form_turn("ticket_email", "jane@example.com"),
                                 bot("utter_ask_ticket_issue", "?"), {"event": "action", "name": "action_listen"},
                                 user("never mind", "handoff_cancel"),
                                 {"event": "action", "name": "action_deactivate_loop"}, {"event": "active_loop", "name": None}]
    slots = {"ticket_email": "jane@example.com", "ticket_why": "no_agents", "offline_handoff": HANDOFF_KEPT}
    result = await executor.run(action_call("action_cancel_ticket", events, slots))

    (message,) = result["responses"]
    assert message["response"] == "utter_ticket_cancelled" and "won't send anything" in rendered(message)
    assert slot_events(result) == {"ticket_email": None, "ticket_issue": None, "offline_handoff": None, "ticket_why": None}


async def test_asking_to_leave_a_message_starts_the_form_with_a_description_for_the_team(executor: ActionExecutor) -> None:
    events = ORDER_THEN_HUMAN[:-1] + [user("can I just leave a message", "handoff_leave_message")]
    result = await executor.run(action_call("action_leave_message", events, {"order_number": "77123",
                                                                             "offline_handoff": HANDOFF_KEPT}))

    (message,) = result["responses"]
    assert message["response"] == "utter_leave_message_start"
    slots = slot_events(result)
    assert slots["ticket_why"] == "visitor_request"
    # A fresh description, not an older hand-off's.
    assert slots["offline_handoff"]["reason"] == "explicit_request"
    assert slots["offline_handoff"]["summary"]["facts"]["order_number"] == "77123"
    assert result["events"][-1]["event"] == "followup" and result["events"][-1]["name"] == "offline_ticket_form"


async def test_asking_to_leave_a_message_in_the_order_form_drops_that_form(executor: ActionExecutor) -> None:
    events = [user("where is my order", "order_status"), bot("utter_ask_order_number", "?"),
              {"event": "action", "name": "action_listen"}, user("just email me", "handoff_leave_message")]
    result = await executor.run(action_call("action_leave_message", events, {"requested_slot": "order_number"},
                                            active_loop="order_status_form"))

    kinds = [(e["event"], e.get("name"), e.get("value")) for e in result["events"]]
    assert ("active_loop", None, None) in kinds and ("slot", "requested_slot", None) in kinds
    assert kinds[-1] == ("followup", "offline_ticket_form", None)


async def test_a_visitor_who_stopped_waiting_is_back_with_the_assistant_without_a_rating(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_handback", handback_events(handoff_outcome="cancelled")))

    (message,) = result["responses"]
    assert message["response"] == "utter_handback_cancelled"
    assert "back with the assistant" in rendered(message)
    assert "buttons" not in DOMAIN.responses["utter_handback_cancelled"][0]  # no rating question
    assert slot_events(result)["handoff_outcome"] == "cancelled"
    assert not any(e["event"] == "followup" for e in result["events"])


async def test_a_visitor_who_stopped_waiting_picks_up_the_interrupted_form_at_once(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_handback", handback_events(handoff_outcome="cancelled"),
                                            {"interrupted_form": "order_status_form"}))

    assert [m["response"] for m in result["responses"]] == ["utter_handback_cancelled", "utter_resume_form"]
    assert result["events"][-2:] == [
        {"event": "slot", "timestamp": None, "name": "interrupted_form", "value": None},
        {"event": "followup", "timestamp": None, "name": "order_status_form"},
    ]


async def test_leave_a_message_after_a_long_wait_starts_the_form_as_unclaimed(executor: ActionExecutor) -> None:
    result = await executor.run(action_call("action_handback", handback_events(handoff_outcome="leave_message"),
                                            {"interrupted_form": "order_status_form", "offline_handoff": HANDOFF_KEPT}))

    (message,) = result["responses"]
    assert message["response"] == "utter_leave_message_start"
    slots = slot_events(result)
    assert slots["handoff_outcome"] == "leave_message" and slots["ticket_why"] == "unclaimed"
    assert slots["interrupted_form"] is None
    assert "offline_handoff" not in slots  # the hand-off the visitor waited for goes with the ticket
    assert result["events"][-1] == {"event": "followup", "timestamp": None, "name": "offline_ticket_form"}
