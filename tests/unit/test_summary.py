"""What an agent reads when a conversation lands in the inbox (handoff_channel.summary), and the
optional summariser that may rewrite its text (handoff_channel.summarizer).

The event lists below are shaped like what rasa-sdk hands an action (``tracker.events``),
copied from real trackers of the Northwind bot and trimmed to the keys that matter.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from handoff_channel.summarizer import MAX_TEXT_CHARS, HttpSummarizer, apply_summarizer, summarizer_from_env
from handoff_channel.summary import build_handoff, read_transcript

TALK_TO_A_PERSON = [{"title": "Talk to a person", "payload": "/request_human"}]


def user(
    text: str,
    intent: str,
    confidence: float = 0.98,
    entities: dict[str, str] | None = None,
    ranking: list[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """A visitor message as rasa-sdk sees it (parse_data holds what NLU made of it)."""
    parse = {
        "intent": {"name": intent, "confidence": confidence},
        "entities": [
            {"entity": name, "value": value, "extractor": "RegexEntityExtractor"}
            for name, value in (entities or {}).items()
        ],
        "text": text,
        "intent_ranking": [{"name": n, "confidence": c} for n, c in (ranking or [(intent, confidence)])],
    }
    return {"event": "user", "timestamp": 1700000000.0, "text": text, "parse_data": parse,
            "input_channel": "handoff", "message_id": f"m-{abs(hash(text)) % 10_000}",
            "metadata": {"model_id": "abc", "assistant_id": "northwind-shop-assistant"}}


def fallback(text: str, best: str, best_confidence: float) -> dict[str, Any]:
    """FallbackClassifier's output: intent nlu_fallback at the threshold, the real guess second."""
    return user(text, "nlu_fallback", 0.4,
                ranking=[("nlu_fallback", 0.4), (best, best_confidence), ("greet", 0.1)])


def bot(utter_action: str | None, text: str, buttons: list[dict[str, str]] | None = None,
        **metadata: Any) -> dict[str, Any]:
    meta = {"utter_action": utter_action} if utter_action else {}
    meta.update(metadata)
    return {"event": "bot", "timestamp": 1700000001.0, "text": text, "metadata": meta,
            "data": {"elements": None, "quick_replies": None, "buttons": buttons, "attachment": None,
                     "image": None, "custom": None}}


def action(name: str) -> dict[str, Any]:
    return {"event": "action", "name": name, "policy": "RulePolicy", "confidence": 1.0}


def latest_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """tracker.latest_message: the parse data of the last visitor message."""
    last = [e for e in events if e["event"] == "user"][-1]
    return {**last["parse_data"], "message_id": last["message_id"]}


START = [action("action_session_start"), {"event": "session_started"}, action("action_listen")]


def returns_conversation() -> list[dict[str, Any]]:
    return START + [
        user("hi", "greet"), action("utter_greet"), bot("utter_greet", "Hi! I'm the Northwind Shop assistant."),
        action("action_listen"),
        user("the trainers I got are too small, how do I send them back?", "returns_policy", 0.95),
        action("utter_returns_policy"),
        bot("utter_returns_policy", "You can return any item within 30 days…", TALK_TO_A_PERSON),
        action("action_listen"),
        user("it was order 48213, email jane.doe@example.com", "order_status", 0.91, {"order_number": "48213"}),
        {"event": "slot", "name": "order_number", "value": "48213"},
        action("action_order_status"),
        bot("utter_order_status_delivered", "Order 48213 was delivered.", TALK_TO_A_PERSON),
        action("action_listen"),
        user("I want to return them for a refund, not a new pair", "returns_policy", 0.88),
        action("utter_returns_policy"),
        bot("utter_returns_policy", "You can return any item within 30 days…", TALK_TO_A_PERSON),
        action("action_listen"),
        user("can I talk to a person please", "request_human", 0.97),
    ]


def test_agent_sees_the_order_number_and_email_without_asking():
    events = returns_conversation()
    handoff = build_handoff(events, {"order_number": "48213"}, latest_of(events))

    facts = handoff["summary"]["facts"]
    assert facts["order_number"] == "48213"
    assert facts["email"] == "jane.doe@example.com"
    assert "48213" in handoff["summary"]["text"]
    assert "jane.doe@example.com" in handoff["summary"]["text"]


def test_headline_says_the_visitor_wants_to_return_an_item():
    events = returns_conversation()
    handoff = build_handoff(events, {"order_number": "48213"}, latest_of(events))

    headline = handoff["summary"]["headline"]
    assert headline == 'Wants to return an item from order 48213: "I want to return them for a refund, not a new pair"'
    assert "\n" not in headline and len(headline) <= 100
    assert handoff["summary"]["text"].splitlines()[0] == headline


def test_explicit_request_is_reason_priority_two_with_the_visitors_words_as_evidence():
    events = returns_conversation()
    handoff = build_handoff(events, {}, latest_of(events))

    assert handoff["reason"] == "explicit_request"
    assert handoff["priority"] == 2
    assert handoff["team"] is None
    assert handoff["evidence"]["intent"] == "request_human"
    assert handoff["evidence"]["confidence"] == 0.97
    assert handoff["evidence"]["text"] == "can I talk to a person please"
    assert handoff["evidence"]["fallback_count"] == 0


def test_what_the_bot_already_answered_is_listed_once_each_in_order_with_labels():
    events = returns_conversation()
    summary = build_handoff(events, {}, latest_of(events))["summary"]

    assert summary["bot_answered"] == ["utter_greet", "utter_returns_policy", "utter_order_status_delivered"]
    assert summary["bot_answered_labels"] == ["greeting", "returns policy", "order status: delivered"]
    bot_line = next(line for line in summary["text"].splitlines() if line.startswith("Bot already said"))
    assert "returns policy" in bot_line and "greeting" not in bot_line


def test_last_three_visitor_messages_newest_last():
    events = returns_conversation()
    summary = build_handoff(events, {}, latest_of(events))["summary"]

    assert summary["last_visitor_messages"] == [
        "it was order 48213, email jane.doe@example.com",
        "I want to return them for a refund, not a new pair",
        "can I talk to a person please",
    ]


def test_summary_text_is_short_enough_to_read_in_five_seconds():
    events = returns_conversation()
    text = build_handoff(events, {"order_number": "48213"}, latest_of(events))["summary"]["text"]

    assert 4 <= len(text.splitlines()) <= 8
    assert all(len(line) <= 120 for line in text.splitlines())


def test_repeated_fallback_is_a_failure_with_the_classifiers_real_guess():
    events = START + [
        user("hello", "greet"), bot("utter_greet", "Hi!"), action("action_listen"),
        fallback("my parcel came smashed what do i do", "returns_policy", 0.33),
        action("utter_default"), bot("utter_default", "Sorry, I didn't quite get that.", TALK_TO_A_PERSON),
        action("action_listen"),
        fallback("the box was crushed and the vase inside is broken", "order_status", 0.31),
    ]
    handoff = build_handoff(events, {}, latest_of(events))

    assert handoff["reason"] == "repeated_failure"
    assert handoff["priority"] == 3
    evidence = handoff["evidence"]
    assert evidence["intent"] == "nlu_fallback"
    # FallbackClassifier puts itself first in the ranking; its 0.4 is the threshold, not a score.
    assert evidence["top_intent"] == "order_status"
    assert evidence["confidence"] == 0.31
    assert evidence["fallback_count"] == 2
    summary = handoff["summary"]
    assert summary["headline"].startswith("The bot didn't understand")
    assert "vase inside is broken" in summary["headline"]
    assert "did not understand 2 times" in summary["text"]


def test_button_click_reads_as_the_buttons_title():
    events = START + [
        user("what's the weather like", "out_of_scope", 0.9), action("utter_out_of_scope"),
        bot("utter_out_of_scope", "Sorry, I can't help with that.", TALK_TO_A_PERSON), action("action_listen"),
        user("/request_human", "request_human", 1.0),
    ]
    handoff = build_handoff(events, {}, latest_of(events))

    assert handoff["summary"]["last_visitor_messages"][-1] == '[clicked "Talk to a person"]'
    assert "clicked the button" in handoff["summary"]["text"]
    assert handoff["summary"]["text"].splitlines()[-1] == '  [clicked "Talk to a person"]'
    assert "/request_human" not in handoff["summary"]["text"]


def test_only_asking_for_a_person_quotes_the_request_when_it_says_more_than_agent():
    angry = START + [user("you lost my parcel, get me a manager", "request_human", 0.93)]
    terse = START + [user("agent", "request_human", 0.99)]

    assert build_handoff(angry, {}, latest_of(angry))["summary"]["headline"] == (
        'Asked for a person: "you lost my parcel, get me a manager"'
    )
    assert build_handoff(terse, {}, latest_of(terse))["summary"]["headline"] == "Asked for a person"


def test_empty_tracker_still_gives_a_usable_handoff():
    handoff = build_handoff([], {}, {})

    assert handoff["reason"] == "explicit_request"
    assert handoff["summary"]["headline"] == "Asked for a person"
    assert handoff["summary"]["facts"] == {}
    assert handoff["summary"]["last_visitor_messages"] == []
    assert 4 <= len(handoff["summary"]["text"].splitlines()) <= 8


def test_earlier_handoff_and_agent_corrected_facts_are_carried_into_the_next_one():
    events = START + [
        user("where is order 77123", "order_status", 0.99, {"order_number": "77123"}),
        action("action_order_status"), bot("utter_order_status_shipped", "Order 77123 is on its way!"),
        action("action_listen"),
        user("talk to human", "request_human", 0.99), action("action_handoff"),
        bot("utter_handoff_connecting", "Connecting you to a person…"),
        {"event": "pause"}, action("action_listen"),
        # The human stretch, logged by the channel while the bot was paused.
        user("hello?", "greet", 0.9),
        bot(None, "Hi, Sarah here. Let me check.", human_agent="sarah", agent_name="Sarah"),
        {"event": "resume"}, action("action_listen"),
        {"event": "user", "text": "EXTERNAL: handoff_done", "metadata": {"is_external": True},
         "parse_data": {"intent": {"name": "handoff_done"}, "entities": [
             {"entity": "handoff_outcome", "value": "follow_up"}, {"entity": "order_number", "value": "77124"}]}},
        action("action_handback"), bot("utter_handback_follow_up", "Thanks for your patience…"),
        action("action_listen"),
        user("still nothing arrived, I need a person again", "request_human", 0.96),
    ]
    slots = {"order_number": "77124", "handoff_agent": "Sarah", "handoff_outcome": "follow_up",
             "handoff_note": "courier claim opened", "handoff_reason": "explicit_request",
             "session_started_metadata": None}
    summary = build_handoff(events, slots, latest_of(events))["summary"]

    assert summary["facts"]["order_number"] == "77124"
    assert summary["facts"]["previous_handoff"] == "Sarah (follow up): courier claim opened"
    assert summary["headline"].startswith("Asking about order 77124")
    # Hand-off mechanics and external intents are not conversation content.
    assert summary["bot_answered"] == ["utter_order_status_shipped"]
    assert "EXTERNAL: handoff_done" not in summary["last_visitor_messages"]
    assert summary["last_visitor_messages"][-2:] == ["hello?", "still nothing arrived, I need a person again"]


def test_invoice_numbers_and_other_slots_become_facts():
    events = START + [
        user("I was charged twice, see invoice INV-20931 and INV 20932", "out_of_scope", 0.7),
        action("utter_out_of_scope"), bot("utter_out_of_scope", "Sorry, I can't help with that.", TALK_TO_A_PERSON),
        action("action_listen"), user("human pls", "request_human", 0.99),
    ]
    facts = build_handoff(events, {"customer_tier": "gold", "gift_wrap": True, "requested_slot": None},
                          latest_of(events))["summary"]["facts"]

    assert facts["invoice_numbers"] == "INV-20931, INV 20932"
    assert facts["customer_tier"] == "gold"
    assert facts["gift_wrap"] == "yes"
    assert "requested_slot" not in facts


def test_restart_forgets_what_came_before_it():
    events = START + [
        user("where is order 11111", "order_status", 0.99, {"order_number": "11111"}),
        bot("utter_order_status_shipped", "Order 11111 is on its way!"), action("action_listen"),
        user("/restart", "restart", 1.0), action("action_restart"), {"event": "restart"},
        action("action_listen"), user("agent", "request_human", 0.99),
    ]
    transcript = read_transcript(events)

    assert [turn.text for turn in transcript.visitor] == ["agent"]
    assert transcript.bot_responses == ()


def test_same_tracker_gives_the_same_summary():
    events = returns_conversation()
    assert build_handoff(events, {}, latest_of(events)) == build_handoff(events, {}, latest_of(events))


def test_long_messages_are_clipped():
    long_text = "I have been waiting for weeks and " * 10 + "I want a refund"
    events = START + [user(long_text, "returns_policy", 0.9), action("action_listen"),
                      user("agent", "request_human", 0.99)]
    summary = build_handoff(events, {}, latest_of(events))["summary"]

    headline = summary["headline"]
    assert len(headline) <= 100 and headline.endswith("…")
    untruncated = f'Wants to return an item: "{long_text}"'
    kept = headline.removesuffix("…")
    assert untruncated.startswith(kept) and untruncated[len(kept)] == " "  # cut between words
    assert all(len(m) <= 100 for m in summary["last_visitor_messages"])


# --- triggers from HandoffPolicy ----------------------------------------------------------------------------


def test_the_policys_trigger_sets_reason_priority_team_and_adds_its_evidence() -> None:
    events = START + [user("you charged me twice", "billing_dispute", 0.97)]
    trigger = {"reason": "billing_dispute", "priority": 4, "team": "billing",
               "evidence": {"triggers": ["billing_dispute", "negative_sentiment"], "topic": "billing_dispute",
                            "confidence": 0.97, "text": "must not replace the message text",
                            "customer_tier": "vip", "priority_raised_from": 3}}
    handoff = build_handoff(events, {}, latest_of(events), trigger=trigger)

    assert (handoff["reason"], handoff["priority"], handoff["team"]) == ("billing_dispute", 4, "billing")
    assert handoff["evidence"]["text"] == "you charged me twice"
    assert handoff["evidence"]["customer_tier"] == "vip"
    why = handoff["summary"]["text"].splitlines()[1]
    assert why == ("Why: billing dispute (billing_dispute, 97% sure); also upset visitor; "
                   "VIP customer (priority raised from 3)")


def test_a_trigger_with_a_nonsense_priority_falls_back_to_the_reasons_default() -> None:
    events = START + [user("human", "request_human", 0.99)]
    handoff = build_handoff(events, {}, latest_of(events), trigger={"reason": "explicit_request", "priority": 9})
    assert handoff["priority"] == 2 and handoff["team"] is None


def test_without_a_trigger_a_topic_intent_names_the_reason() -> None:
    # A designer added a rule `intent: warranty_claim -> action_handoff` but no topic in config.yml.
    events = START + [user("my kettle broke after a year", "warranty_claim", 0.91)]
    assert build_handoff(events, {}, latest_of(events))["reason"] == "warranty_claim"


def test_a_safety_topic_raised_earlier_stays_in_the_headline() -> None:
    events = START + [
        user("I don't want to live anymore", "safety_concern", 0.93),
        action("utter_crisis_resources"), bot("utter_crisis_resources", "If you or anyone else is in danger…"),
        action("action_listen"), user("where is my order 12345 anyway", "order_status", 0.9, {"order_number": "12345"}),
    ]
    summary = build_handoff(events, {"order_number": "12345"}, latest_of(events))["summary"]
    assert summary["headline"].startswith("SAFETY: the visitor may be at risk")


def test_the_mood_shows_only_when_the_visitor_sounded_negative() -> None:
    calm = START + [user("where is my order", "order_status"), action("action_listen"), user("agent", "request_human")]
    for event in calm:
        if event["event"] == "user":
            event["parse_data"]["sentiment"] = {"score": 0.1, "label": "neutral"}
    upset = [dict(e) for e in calm]
    upset[3] = user("this is awful, where is my order", "order_status")
    upset[3]["parse_data"]["sentiment"] = {"score": -0.62, "label": "negative"}

    assert "mood" not in build_handoff(calm, {}, latest_of(calm))["summary"]["text"]
    assert "mood -0.6 → +0.1" in build_handoff(upset, {}, latest_of(upset))["summary"]["text"]


# --- the optional summariser (handoff_channel.summarizer) ------------------------------------------------------


@contextlib.contextmanager
def fake_llm(answer: str | None, *, wire: str = "openai", status: int = 200) -> Iterator[tuple[str, list[Any]]]:
    """A local stand-in for an LLM endpoint: records the requests, answers ``answer``."""
    requests: list[Any] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({**body, "_auth": self.headers.get("Authorization")})
            if wire == "openai":
                reply: Any = {"choices": [{"message": {"role": "assistant", "content": answer}}]}
            else:
                reply = {"text": answer}
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions", requests
    finally:
        server.shutdown()
        server.server_close()


def test_no_summariser_unless_configured() -> None:
    assert summarizer_from_env({}) is None
    events = returns_conversation()
    handoff = build_handoff(events, {}, latest_of(events))
    assert apply_summarizer(handoff, events, None) is handoff
    assert handoff["summary"]["generated_by"] == "deterministic"


def test_an_openai_compatible_endpoint_writes_the_text_and_the_rest_stays_deterministic() -> None:
    events = returns_conversation()
    handoff = build_handoff(events, {}, latest_of(events))
    with fake_llm("Wants to return trainers from order 48213 for a refund.") as (url, requests):
        summarizer = summarizer_from_env({"HANDOFF_SUMMARIZER_URL": url, "HANDOFF_SUMMARIZER_MODEL": "small-model",
                                          "HANDOFF_SUMMARIZER_API_KEY": "sk-test"})
        result = apply_summarizer(handoff, events, summarizer)

    summary = result["summary"]
    assert summary["text"] == "Wants to return trainers from order 48213 for a refund."
    assert summary["deterministic_text"] == handoff["summary"]["text"]
    assert summary["generated_by"] == "http:openai"
    assert summary["headline"] == handoff["summary"]["headline"] and summary["facts"] == handoff["summary"]["facts"]
    (request,) = requests
    assert request["model"] == "small-model" and request["temperature"] == 0 and request["_auth"] == "Bearer sk-test"
    assert "Visitor: the trainers I got are too small" in request["messages"][1]["content"]


def test_a_json_endpoint_gets_the_handoff_and_the_transcript() -> None:
    events = returns_conversation()
    handoff = build_handoff(events, {}, latest_of(events))
    with fake_llm("x" * 5000, wire="json") as (url, requests):
        result = apply_summarizer(handoff, events, HttpSummarizer(url, wire_format="json"))
    assert requests[0]["handoff"]["reason"] == "explicit_request"
    assert requests[0]["transcript"][0] == "Visitor: hi"
    assert len(result["summary"]["text"]) == MAX_TEXT_CHARS


@pytest.mark.parametrize(("answer", "status"), [(None, 200), ("", 200), ("text", 500)])
def test_a_failing_or_empty_summariser_keeps_the_deterministic_summary(answer: str | None, status: int) -> None:
    events = returns_conversation()
    handoff = build_handoff(events, {}, latest_of(events))
    with fake_llm(answer, status=status) as (url, _):
        assert apply_summarizer(handoff, events, HttpSummarizer(url, timeout=2)) == handoff


class _Shouting:
    name = "shouting"

    def summarize(self, handoff: Any, transcript: Any) -> str:
        return handoff["summary"]["headline"].upper()


def shouting() -> _Shouting:
    return _Shouting()


def test_any_python_summariser_plugs_in_by_name() -> None:
    summarizer = summarizer_from_env({"HANDOFF_SUMMARIZER": f"{__name__}:shouting"})
    events = returns_conversation()
    result = apply_summarizer(build_handoff(events, {}, latest_of(events)), events, summarizer)
    assert result["summary"]["text"].startswith("WANTS TO RETURN") and result["summary"]["generated_by"] == "shouting"


def test_a_summariser_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        summarizer_from_env({"HANDOFF_SUMMARIZER_URL": "file:///etc/passwd"})
