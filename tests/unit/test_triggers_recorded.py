"""Hand-off triggers and summaries on trackers recorded from the real bot.

Each tracker below was recorded from the end-to-end stack (model trained from bot/config.fast.yml,
the real action server and gateway; tests/e2e/test_triggers.py drives the same conversations),
read from Rasa's SQL tracker store, trimmed to the keys that matter and cut just before the last
``action_handoff`` ran. Replaying HandoffPolicy's decision on them must give the hand-off that
was recorded, and the summary must tell an agent, in five seconds, what happened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from handoff_channel.policies import triggers
from handoff_channel.summary import build_handoff

CONFIG = Path(__file__).resolve().parents[2] / "bot" / "config.yml"

RECORDED: dict[str, Any] = json.loads(r"""
{
  "safety": {
   "handoff": {"reason": "safety", "priority": 4, "team": "safety"},
   "events": [
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_session_start"},
    {"event": "session_started"},
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet", "confidence": 0.967}, "intent_ranking": [{"name": "greet", "confidence": 0.967}, {"name": "bot_challenge", "confidence": 0.016}, {"name": "affirm", "confidence": 0.006}], "entities": [], "sentiment": {"score": 0.0, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "action", "name": "utter_greet"},
    {"event": "bot", "text": "Hi! I'm the Northwind Shop assistant. I can help with orders, delivery, returns and your account. What can I do for you?", "metadata": {"utter_action": "utter_greet"}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "where is my parcel", "parse_data": {"intent": {"name": "order_status", "confidence": 0.989}, "intent_ranking": [{"name": "order_status", "confidence": 0.989}, {"name": "delivery_times", "confidence": 0.003}, {"name": "returns_policy", "confidence": 0.002}], "entities": [], "sentiment": {"score": 0.0, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "action", "name": "order_status_form"},
    {"event": "active_loop", "name": "order_status_form"},
    {"event": "slot", "name": "requested_slot", "value": "order_number"},
    {"event": "bot", "text": "Sure! What's your order number? It has 5 to 8 digits and is in your order confirmation email.", "metadata": {"utter_action": "utter_ask_order_number"}, "data": {"buttons": [{"title": "Talk to a person", "payload": "/request_human"}]}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "honestly I don't want to live anymore", "parse_data": {"intent": {"name": "safety_concern", "confidence": 0.931}, "intent_ranking": [{"name": "safety_concern", "confidence": 0.931}, {"name": "deny", "confidence": 0.029}, {"name": "delivery_times", "confidence": 0.011}], "entities": [], "sentiment": {"score": 0.417, "label": "positive", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "action", "name": "utter_crisis_resources"},
    {"event": "bot", "text": "I'm really sorry you're going through this, and I'm getting a person from our team for you right now. If you or anyone else is in immediate danger, please call your local emergency number now (112 in the EU, 999 in the UK, 911 in the US). If you're thinking about harming yourself, you can talk to someone right away: free, confidential helplines for your country are listed at https://findahelpline.com", "metadata": {"utter_action": "utter_crisis_resources"}},
    {"event": "slot", "name": "handoff_trigger", "value": {"reason": "safety", "priority": 4, "team": "safety", "evidence": {"triggers": ["safety"], "topic": "safety_concern", "confidence": 0.931, "matched": "don't want to live", "intent": "safety_concern", "sentiment_trend": [0.0, 0.0, 0.417]}}}
   ]
  },
  "sentiment_vip": {
   "handoff": {"reason": "negative_sentiment", "priority": 3, "team": null},
   "events": [
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en", "tier": "vip"}}},
    {"event": "action", "name": "action_session_start"},
    {"event": "session_started"},
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en", "tier": "vip"}}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "hi, order 48213, my email is jane.doe@example.com", "parse_data": {"intent": {"name": "order_status", "confidence": 0.98}, "intent_ranking": [{"name": "order_status", "confidence": 0.98}, {"name": "delivery_times", "confidence": 0.006}, {"name": "payment_methods", "confidence": 0.003}], "entities": [{"entity": "order_number", "value": "48213"}], "sentiment": {"score": 0.0, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en", "tier": "vip"}}},
    {"event": "slot", "name": "order_number", "value": "48213"},
    {"event": "action", "name": "order_status_form"},
    {"event": "active_loop", "name": "order_status_form"},
    {"event": "slot", "name": "order_number", "value": "48213"},
    {"event": "slot", "name": "requested_slot", "value": null},
    {"event": "active_loop", "name": null},
    {"event": "action", "name": "action_order_status"},
    {"event": "bot", "text": "Order 48213 is being packed at our warehouse and ships within 1 working day. You'll get a tracking link by email.", "metadata": {"utter_action": "utter_order_status_packed"}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "this is ridiculous, it was due a week ago", "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.4}, "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.4}, {"name": "returns_policy", "confidence": 0.16}, {"name": "order_status", "confidence": 0.136}], "entities": [], "sentiment": {"score": -0.459, "label": "negative", "analyser": "vader"}}, "metadata": {"customData": {"language": "en", "tier": "vip"}}},
    {"event": "action", "name": "utter_default"},
    {"event": "bot", "text": "Sorry, I didn't quite get that. Could you say it another way?", "metadata": {"utter_action": "utter_default"}, "data": {"buttons": [{"title": "Talk to a person", "payload": "/request_human"}]}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "absolutely unacceptable, I'm furious", "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.4}, "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.4}, {"name": "affirm", "confidence": 0.338}, {"name": "billing_dispute", "confidence": 0.159}], "entities": [], "sentiment": {"score": -0.838, "label": "negative", "analyser": "vader"}}, "metadata": {"customData": {"language": "en", "tier": "vip"}}},
    {"event": "slot", "name": "handoff_trigger", "value": {"reason": "negative_sentiment", "priority": 3, "team": null, "evidence": {"triggers": ["negative_sentiment"], "below": -0.4, "turns": 2, "intent": "affirm", "confidence": 0.338, "consecutive_failures": 2, "sentiment_trend": [0.0, -0.459, -0.838], "customer_tier": "vip"}}}
   ]
  },
  "billing": {
   "handoff": {"reason": "billing_dispute", "priority": 3, "team": "billing"},
   "events": [
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_session_start"},
    {"event": "session_started"},
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "how long does delivery take?", "parse_data": {"intent": {"name": "delivery_times", "confidence": 0.99}, "intent_ranking": [{"name": "delivery_times", "confidence": 0.99}, {"name": "order_status", "confidence": 0.003}, {"name": "legal_threat", "confidence": 0.002}], "entities": [], "sentiment": {"score": 0.0, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "action", "name": "utter_delivery_times"},
    {"event": "bot", "text": "We deliver in 2-4 working days. Orders placed before 14:00 CET on a working day ship the same day, and you'll get a tracking link by email.", "metadata": {"utter_action": "utter_delivery_times"}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "you charged me twice, see invoice INV-20931", "parse_data": {"intent": {"name": "billing_dispute", "confidence": 0.984}, "intent_ranking": [{"name": "billing_dispute", "confidence": 0.984}, {"name": "rate", "confidence": 0.006}, {"name": "payment_methods", "confidence": 0.003}], "entities": [], "sentiment": {"score": -0.202, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "slot", "name": "handoff_trigger", "value": {"reason": "billing_dispute", "priority": 3, "team": "billing", "evidence": {"triggers": ["billing_dispute"], "topic": "billing_dispute", "confidence": 0.984, "intent": "billing_dispute", "sentiment_trend": [0.0, -0.202]}}}
   ]
  },
  "failure": {
   "handoff": {"reason": "repeated_failure", "priority": 3, "team": null},
   "events": [
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_session_start"},
    {"event": "session_started"},
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "qqqq wwww eeee", "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.4}, "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.4}, {"name": "out_of_scope", "confidence": 0.371}, {"name": "custom_pricing", "confidence": 0.139}], "entities": [], "sentiment": {"score": 0.0, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "action", "name": "utter_default"},
    {"event": "bot", "text": "Sorry, I didn't quite get that. Could you say it another way?", "metadata": {"utter_action": "utter_default"}, "data": {"buttons": [{"title": "Talk to a person", "payload": "/request_human"}]}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "zxcv asdf", "parse_data": {"intent": {"name": "out_of_scope", "confidence": 0.997}, "intent_ranking": [{"name": "out_of_scope", "confidence": 0.997}, {"name": "rate", "confidence": 0.0}, {"name": "account_hacked", "confidence": 0.0}], "entities": [], "sentiment": {"score": 0.0, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "action", "name": "utter_offer_human"},
    {"event": "bot", "text": "Sorry, I'm not getting this right. Would you like a person from our team to take over?", "metadata": {"utter_action": "utter_offer_human"}, "data": {"buttons": [{"title": "Yes, a person please", "payload": "/affirm"}, {"title": "No, I'll rephrase", "payload": "/deny"}]}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "/affirm", "parse_data": {"intent": {"name": "affirm", "confidence": 1.0}, "intent_ranking": [{"name": "affirm", "confidence": 1.0}], "entities": []}, "metadata": {"customData": {"language": "en"}}},
    {"event": "slot", "name": "handoff_trigger", "value": {"reason": "repeated_failure", "priority": 3, "team": null, "evidence": {"triggers": ["accepted_offer"], "accepted_offer": "utter_offer_human", "consecutive_failures": 2, "intent": "affirm", "confidence": 1.0, "sentiment_trend": [0.0, 0.0, 0.0]}}}
   ]
  },
  "form": {
   "handoff": {"reason": "explicit_request", "priority": 2, "team": null},
   "events": [
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_session_start"},
    {"event": "session_started"},
    {"event": "slot", "name": "session_started_metadata", "value": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "where is my order?", "parse_data": {"intent": {"name": "order_status", "confidence": 0.988}, "intent_ranking": [{"name": "order_status", "confidence": 0.988}, {"name": "delivery_times", "confidence": 0.003}, {"name": "bot_challenge", "confidence": 0.001}], "entities": [], "sentiment": {"score": 0.0, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "action", "name": "order_status_form"},
    {"event": "active_loop", "name": "order_status_form"},
    {"event": "slot", "name": "requested_slot", "value": "order_number"},
    {"event": "bot", "text": "Sure! What's your order number? It has 5 to 8 digits and is in your order confirmation email.", "metadata": {"utter_action": "utter_ask_order_number"}, "data": {"buttons": [{"title": "Talk to a person", "payload": "/request_human"}]}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "I don't have the number, get me a person", "parse_data": {"intent": {"name": "request_human", "confidence": 0.995}, "intent_ranking": [{"name": "request_human", "confidence": 0.995}, {"name": "returns_policy", "confidence": 0.001}, {"name": "account_details", "confidence": 0.0}], "entities": [], "sentiment": {"score": -0.057, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "slot", "name": "handoff_trigger", "value": {"reason": "explicit_request", "priority": 2, "team": null, "evidence": {"triggers": ["explicit_request"], "intent": "request_human", "confidence": 0.995, "clicked": false, "sentiment_trend": [0.0, -0.057]}}},
    {"event": "action", "name": "action_handoff"},
    {"event": "bot", "text": "Connecting you to a person… they'll see our whole conversation, so you won't need to repeat yourself.", "metadata": {"utter_action": "utter_handoff_connecting"}},
    {"event": "bot", "text": null, "metadata": {}},
    {"event": "slot", "name": "handoff_trigger", "value": null},
    {"event": "slot", "name": "handoff_reason", "value": "explicit_request"},
    {"event": "slot", "name": "interrupted_form", "value": "order_status_form"},
    {"event": "active_loop", "name": null},
    {"event": "slot", "name": "requested_slot", "value": null},
    {"event": "pause"},
    {"event": "action", "name": "action_listen"},
    {"event": "bot", "text": "Sarah joined the chat", "metadata": {"handoff_system": true}},
    {"event": "bot", "text": "Hi, Sarah here, I found your order.", "metadata": {"human_agent": "sarah", "agent_name": "Sarah"}},
    {"event": "user", "text": "great, thanks Sarah", "parse_data": {"intent": {"name": "thank", "confidence": 0.949}, "intent_ranking": [{"name": "thank", "confidence": 0.949}, {"name": "rate", "confidence": 0.009}, {"name": "opening_hours", "confidence": 0.007}], "entities": [], "sentiment": {"score": 0.791, "label": "positive", "analyser": "vader"}}, "metadata": {"handoff": "human_stretch"}},
    {"event": "bot", "text": "Sarah left the chat", "metadata": {"handoff_system": true}},
    {"event": "resume"},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "EXTERNAL: handoff_done", "parse_data": {"intent": {"name": "handoff_done", "confidence": 1.0}, "intent_ranking": [], "entities": [{"entity": "handoff_outcome", "value": "continue"}, {"entity": "handoff_agent", "value": "Sarah"}, {"entity": "handoff_note", "value": "found it by email"}, {"entity": "order_number", "value": "77124"}]}, "metadata": {"is_external": true}},
    {"event": "slot", "name": "order_number", "value": "77124"},
    {"event": "action", "name": "action_handback"},
    {"event": "bot", "text": "Sarah has left the chat. You're back with the assistant. How would you rate the help you got, from 1 (poor) to 5 (great)?", "metadata": {"utter_action": "utter_handback_continue"}, "data": {"buttons": [{"title": "1 (poor)", "payload": "/rate{\"rating\": 1}"}, {"title": "2", "payload": "/rate{\"rating\": 2}"}, {"title": "3", "payload": "/rate{\"rating\": 3}"}, {"title": "4", "payload": "/rate{\"rating\": 4}"}, {"title": "5 (great)", "payload": "/rate{\"rating\": 5}"}]}},
    {"event": "slot", "name": "handoff_outcome", "value": "continue"},
    {"event": "slot", "name": "handoff_agent", "value": "Sarah"},
    {"event": "slot", "name": "handoff_note", "value": "found it by email"},
    {"event": "slot", "name": "order_number", "value": "77124"},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "/rate{\"rating\": 4}", "parse_data": {"intent": {"name": "rate", "confidence": 1.0}, "intent_ranking": [{"name": "rate", "confidence": 1.0}], "entities": [{"entity": "rating", "value": 4}]}, "metadata": {"customData": {"language": "en"}}},
    {"event": "action", "name": "action_record_rating"},
    {"event": "bot", "text": "Thank you for rating us 4 out of 5! I'll pass it on to the team.", "metadata": {"utter_action": "utter_rating_thanks_good"}},
    {"event": "bot", "text": "Let's pick up where we left off.", "metadata": {"utter_action": "utter_resume_form"}},
    {"event": "slot", "name": "handoff_rating", "value": 4.0},
    {"event": "slot", "name": "interrupted_form", "value": null},
    {"event": "followup", "name": "order_status_form"},
    {"event": "action", "name": "order_status_form"},
    {"event": "active_loop", "name": "order_status_form"},
    {"event": "slot", "name": "requested_slot", "value": null},
    {"event": "active_loop", "name": null},
    {"event": "action", "name": "action_order_status"},
    {"event": "bot", "text": "Order 77124 is being packed at our warehouse and ships within 1 working day. You'll get a tracking link by email.", "metadata": {"utter_action": "utter_order_status_packed"}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "it says packed but I need it tomorrow, can I talk to someone again", "parse_data": {"intent": {"name": "request_human", "confidence": 0.917}, "intent_ranking": [{"name": "request_human", "confidence": 0.917}, {"name": "refund_exception", "confidence": 0.021}, {"name": "billing_dispute", "confidence": 0.02}], "entities": [], "sentiment": {"score": 0.0, "label": "neutral", "analyser": "vader"}}, "metadata": {"customData": {"language": "en"}}},
    {"event": "slot", "name": "handoff_trigger", "value": {"reason": "explicit_request", "priority": 2, "team": null, "evidence": {"triggers": ["explicit_request"], "intent": "request_human", "confidence": 0.917, "clicked": false, "sentiment_trend": [0.0, 0.0]}}}
   ]
  }
}
""")


def bot_settings() -> triggers.Settings:
    policies = yaml.safe_load(CONFIG.read_text())["policies"]
    (config,) = [p for p in policies if p["name"].endswith("HandoffPolicy")]
    return triggers.settings_from_config(config)


SETTINGS = bot_settings()


def at_prediction(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tracker as HandoffPolicy saw it: before its ``handoff_trigger`` slot event."""
    cut = max(i for i, e in enumerate(events) if e["event"] == "slot" and e["name"] == "handoff_trigger")
    return events[:cut]


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    slots: dict[str, Any] = {}
    for event in events:
        if event["event"] == "slot":
            slots[event["name"]] = event["value"]
    return slots


def latest_message(events: list[dict[str, Any]]) -> dict[str, Any]:
    last = [e for e in events if e["event"] == "user"][-1]
    return {**last["parse_data"], "text": last["text"]}


def handoff_of(name: str) -> tuple[triggers.Decision, dict[str, Any]]:
    """Replay the policy on a recorded tracker, then build the summary as action_handoff does."""
    events = RECORDED[name]["events"]
    decision = triggers.decide(at_prediction(events), SETTINGS, slots_of(at_prediction(events)))
    handoff = build_handoff(events, slots_of(events), latest_message(events), trigger=slots_of(events)["handoff_trigger"])
    return decision, dict(handoff)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_replaying_the_policy_gives_the_recorded_handoff(name: str) -> None:
    recorded = RECORDED[name]
    decision, handoff = handoff_of(name)

    assert decision.action == "action_handoff"
    assert decision.trigger == slots_of(recorded["events"])["handoff_trigger"]
    assert {k: handoff[k] for k in ("reason", "priority", "team")} == recorded["handoff"]


def test_safety_crisis_resources_come_first_and_the_summary_says_safety() -> None:
    events = RECORDED["safety"]["events"]
    before_crisis = events[: next(i for i, e in enumerate(events)
                                  if e["event"] == "action" and e["name"] == "utter_crisis_resources")]
    assert triggers.decide(before_crisis, SETTINGS).action == "utter_crisis_resources"

    decision, handoff = handoff_of("safety")
    assert (handoff["reason"], handoff["priority"], handoff["team"]) == ("safety", 4, "safety")
    assert decision.trigger and decision.trigger["evidence"]["matched"] == "don't want to live"
    summary = handoff["summary"]
    assert summary["headline"] == 'SAFETY: the visitor may be at risk: "honestly I don\'t want to live anymore"'
    lines = summary["text"].splitlines()
    assert lines[1] == 'Why: safety language (said "don\'t want to live")'
    assert "utter_crisis_resources" in summary["bot_answered"]
    assert "crisis resources" in lines[3]


def test_sustained_negative_sentiment_shows_the_trend_and_the_vip_tier() -> None:
    _, handoff = handoff_of("sentiment_vip")

    evidence = handoff["evidence"]
    assert evidence["sentiment_trend"] == [0.0, -0.459, -0.838]
    assert (evidence["below"], evidence["turns"], evidence["customer_tier"]) == (-0.4, 2, "vip")
    # The bot records the tier; raising a VIP's priority is the gateway's job (config.yml, vip).
    assert handoff["priority"] == 3 and "priority_raised_from" not in evidence
    summary = handoff["summary"]
    assert summary["facts"] == {"order_number": "48213", "email": "jane.doe@example.com", "customer_tier": "vip"}
    why = summary["text"].splitlines()[1]
    assert why == ("Why: the visitor sounds upset (2 messages in a row below -0.40); "
                   "mood +0.0 → -0.5 → -0.8; VIP customer")


def test_billing_dispute_keeps_the_invoice_and_does_not_mistake_it_for_an_order() -> None:
    _, handoff = handoff_of("billing")

    summary = handoff["summary"]
    assert summary["facts"] == {"invoice_numbers": "INV-20931"}
    assert summary["headline"] == 'Disputes a charge: "you charged me twice, see invoice INV-20931"'
    assert summary["text"].splitlines()[1].startswith("Why: billing dispute (billing_dispute, 98% sure)")
    assert summary["bot_answered"] == ["utter_delivery_times"]


def test_accepting_the_offer_after_two_misses_is_a_repeated_failure() -> None:
    decision, handoff = handoff_of("failure")

    assert decision.trigger and decision.trigger["evidence"]["accepted_offer"] == "utter_offer_human"
    assert handoff["evidence"]["consecutive_failures"] == 2
    text = handoff["summary"]["text"]
    assert "the bot did not understand 2 times in a row; the visitor accepted the offer of a person" in text
    assert handoff["summary"]["last_visitor_messages"][-1] == '[clicked "Yes, a person please"]'


def test_second_handoff_knows_the_first_the_rating_and_the_resumed_form() -> None:
    decision, handoff = handoff_of("form")

    summary = handoff["summary"]
    assert summary["facts"]["order_number"] == "77124"  # the agent's correction, used by the resumed form
    assert summary["facts"]["previous_handoff"] == "Sarah (continue): found it by email; rated 4/5"
    # The long request says what the visitor needs now.
    assert summary["headline"].startswith('Asking about order 77124: "it says packed but I need it tomorrow')
    # Hand-off mechanics (rating, "let's pick up where we left off") are not answers.
    assert summary["bot_answered"] == ["utter_ask_order_number", "utter_order_status_packed"]
    # The human stretch does not count towards the new hand-off's triggers.
    assert decision.trigger and decision.trigger["evidence"]["triggers"] == ["explicit_request"]


def test_the_first_handoff_of_the_form_conversation_parked_the_form() -> None:
    events = RECORDED["form"]["events"]
    first = next(i for i, e in enumerate(events) if e["event"] == "action" and e["name"] == "action_handoff")
    after = events[first:first + 12]
    assert {"event": "slot", "name": "interrupted_form", "value": "order_status_form"} in after
    assert {"event": "active_loop", "name": None} in after
    assert [e["event"] for e in after].index("active_loop") < [e["event"] for e in after].index("pause")
