"""Every hand-off trigger end to end: a socket.io visitor talks to the real bot (model trained from
bot/config.fast.yml, so HandoffPolicy runs with the designer's parameters; the real action server;
the gateway), and the conversation lands in the queue with the right reason, priority, team and
evidence, as an agent sees it on the inbox API. Then the hand-back: rating and a resumed form."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from handoff_channel.devstack import Stack

from ..support import AgentClient, Visitor
from .tracker import wait_tracker

pytestmark = pytest.mark.e2e


async def queued_after(stack: Stack, agent: AgentClient, messages: list[str], *,
                       custom: Optional[dict[str, Any]] = None) -> tuple[Visitor, str, dict[str, Any]]:
    """Say ``messages`` one by one (each waits for the bot's answer); returns the visitor, the
    conversation id and its inbox detail once it is queued for a person."""
    visitor = Visitor(stack.gateway_url)
    cid = await visitor.connect()
    stream = await agent.stream()
    for text in messages:
        n = len(visitor.received)
        assert (await visitor.say(text, custom=custom))["ok"]
        await visitor.wait_for(lambda ms: len(ms) > n)
    await stream.wait_for(lambda e: e["type"] == "conversation_updated" and e["conversation_id"] == cid
                          and e["conversation"]["status"] == "queued")
    await visitor.wait_text("connecting you")
    return visitor, cid, await agent.conversation(cid)


async def bot_answers(visitor: Visitor, text: str, **kwargs: Any) -> list[str]:
    n = len(visitor.received)
    await visitor.say(text, **kwargs)
    await visitor.wait_for(lambda ms: len(ms) > n)
    return visitor.texts()[n:]


async def test_explicit_request_is_queued_with_its_reason_and_evidence(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid, detail = await queued_after(stack, sarah, ["can I talk to a human please"])

    assert (detail["status"], detail["reason"], detail["priority"]) == ("queued", "explicit_request", 2)
    evidence = detail["handoff"]["evidence"]
    assert evidence["triggers"][0] == "explicit_request"
    assert evidence["intent"] == "request_human" and evidence["confidence"] > 0.5
    assert "asked for a person" in detail["handoff"]["summary"]["text"]
    await visitor.close()


async def test_the_talk_to_a_person_button_hands_off_at_once(stack: Stack, sarah: AgentClient) -> None:
    visitor = Visitor(stack.gateway_url)
    await visitor.connect()
    offered = await bot_answers(visitor, "what's the weather like")
    assert any("can't help" in t for t in offered)
    button = next(r for m in visitor.received for r in m.get("quick_replies") or [] if r["title"] == "Talk to a person")
    await visitor.close()

    visitor, cid, detail = await queued_after(stack, sarah, [button["payload"]])
    assert (detail["reason"], detail["priority"]) == ("explicit_request", 2)
    assert detail["handoff"]["evidence"]["clicked"] is True
    assert "clicked the button" in detail["handoff"]["summary"]["text"]
    await visitor.close()


async def test_repeated_failure_offers_a_person_and_yes_hands_off(stack: Stack, sarah: AgentClient) -> None:
    visitor = Visitor(stack.gateway_url)
    cid = await visitor.connect()
    first = await bot_answers(visitor, "qqqq wwww eeee")
    assert not any("person from our team to take over" in t for t in first)
    second = await bot_answers(visitor, "zxcv asdf")
    assert any("Would you like a person" in t for t in second)
    offer = visitor.received[-1]
    assert [r["payload"] for r in offer["quick_replies"]] == ["/affirm", "/deny"]

    stream = await sarah.stream()
    await visitor.say("/affirm")
    await stream.wait_for(lambda e: e["type"] == "conversation_updated" and e["conversation_id"] == cid
                          and e["conversation"]["status"] == "queued")
    detail = await sarah.conversation(cid)
    assert (detail["reason"], detail["priority"]) == ("repeated_failure", 3)
    evidence = detail["handoff"]["evidence"]
    assert evidence["accepted_offer"] == "utter_offer_human"
    assert evidence["consecutive_failures"] == 2
    assert "accepted the offer of a person" in detail["handoff"]["summary"]["text"]
    await visitor.close()


async def test_repeated_failure_hands_off_when_the_bot_keeps_failing(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid, detail = await queued_after(stack, sarah, ["qqqq wwww eeee", "zxcv asdf", "qqq www eee rrr"])

    assert (detail["reason"], detail["priority"]) == ("repeated_failure", 3)
    assert detail["handoff"]["evidence"]["consecutive_failures"] == 3
    assert "did not understand 3 times in a row" in detail["handoff"]["summary"]["text"]
    await visitor.close()


async def test_sustained_negative_sentiment_hands_off_and_every_message_has_a_score(
    stack: Stack, sarah: AgentClient
) -> None:
    visitor, cid, detail = await queued_after(stack, sarah, [
        "where is my order 48213",
        "this is ridiculous, it was due a week ago",
        "absolutely unacceptable, I'm furious",
    ])

    assert (detail["reason"], detail["priority"]) == ("negative_sentiment", 3)
    evidence = detail["handoff"]["evidence"]
    assert evidence["below"] == -0.4 and evidence["turns"] == 2
    trend = evidence["sentiment_trend"]
    assert len(trend) == 3 and trend[0] == 0.0 and all(s < -0.4 for s in trend[1:])
    # The score is stored with each visitor message, where agents see it.
    scores = [m["meta"]["sentiment"] for m in detail["messages"] if m["role"] == "visitor"]
    assert [s["label"] for s in scores] == ["neutral", "negative", "negative"]
    assert all(set(s) >= {"score", "label"} for s in scores)
    assert "upset" in detail["handoff"]["summary"]["text"] and "48213" in detail["handoff"]["summary"]["text"]
    await visitor.close()


@pytest.mark.parametrize(
    ("text", "reason", "priority", "team"),
    [
        ("I was charged twice for the same order", "billing_dispute", 3, "billing"),
        ("I want a refund but it's been 3 months", "refund_outside_policy", 2, "returns"),
        ("I'm going to sue you, my lawyer will be in touch", "legal_threat", 3, "legal"),
        ("someone hacked my account and ordered stuff", "account_compromised", 3, "security"),
        ("we need a quote for 500 units for our company", "sales_custom_pricing", 2, "sales"),
    ],
)
async def test_sensitive_topics_go_to_their_team_at_once(
    stack: Stack, sarah: AgentClient, text: str, reason: str, priority: int, team: str
) -> None:
    visitor, cid, detail = await queued_after(stack, sarah, [text])

    assert (detail["reason"], detail["priority"], detail["team"]) == (reason, priority, team)
    assert detail["handoff"]["evidence"]["topic"]
    assert detail["handoff"]["team"] == team
    await visitor.close()


async def test_safety_language_shows_crisis_resources_and_is_most_urgent(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid, detail = await queued_after(stack, sarah, ["where is my parcel", "honestly I don't want to live anymore"])

    assert (detail["reason"], detail["priority"], detail["team"]) == ("safety", 4, "safety")
    texts = visitor.texts()
    crisis = next(i for i, t in enumerate(texts) if "findahelpline.com" in t)
    connecting = next(i for i, t in enumerate(texts) if "connecting you" in t.lower())
    assert crisis < connecting and "112" in texts[crisis]
    summary = detail["handoff"]["summary"]
    assert summary["headline"].startswith("SAFETY")
    assert "crisis resources" in summary["text"]
    # Nothing less urgent is ahead of it in the queue.
    queue = (await sarah.ok("GET", "/api/conversations?view=unassigned"))["conversations"]
    ahead = queue[: [c["id"] for c in queue].index(cid)]
    assert all(c["queue_priority"] >= 4 for c in ahead)
    await visitor.close()


async def test_a_vip_from_the_page_gets_a_higher_priority(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid, detail = await queued_after(stack, sarah, ["I'd like to talk to a person"],
                                              custom={"language": "en", "tier": "vip"})

    # The bot records the tier (config.yml, vip); the gateway raises a VIP's priority by one.
    assert (detail["reason"], detail["priority"]) == ("explicit_request", 3)
    assert detail["handoff"]["evidence"]["customer_tier"] == "vip"
    summary = detail["handoff"]["summary"]
    assert summary["facts"]["customer_tier"] == "vip" and "VIP customer" in summary["text"]
    await visitor.close()


async def test_handback_asks_for_a_rating_and_resumes_the_interrupted_form(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid, detail = await queued_after(stack, sarah, ["where is my order?", "I don't have the number, get me a person"])
    assert any("order number" in t for t in visitor.texts()[:2])  # the form asked for it
    assert detail["reason"] == "explicit_request"

    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    await sarah.ok("POST", f"/api/conversations/{cid}/handback",
                   {"outcome": "continue", "note": "found it by email", "facts": {"order_number": "77124"}})
    back = await visitor.wait_text("back with the assistant")
    assert "rate" in back["text"] and [r["title"] for r in back["quick_replies"]][-1].startswith("5")

    four = next(r["payload"] for r in back["quick_replies"] if r["title"] == "4")
    n = len(visitor.received)
    await visitor.say(four)
    await visitor.wait_text("77124")  # the form resumed, had the agent's number, and answered
    after = visitor.texts()[n:]
    assert any("4 out of 5" in t for t in after)
    assert any("pick up where we left off" in t for t in after)

    events = await wait_tracker(stack.tracker_db, cid, lambda ev: any(
        e["event"] == "action" and e.get("name") == "action_order_status" for e in ev[-8:]))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handoff_rating"] == 4.0
    assert slots["interrupted_form"] is None and slots["order_number"] == "77124"
    await visitor.close()


async def test_resolved_handback_drops_the_interrupted_form(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid, _ = await queued_after(stack, sarah, ["where is my order?", "just give me a human"])
    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    await sarah.ok("POST", f"/api/conversations/{cid}/handback", {"outcome": "resolved"})
    await visitor.wait_text("back with the assistant")

    answer = await bot_answers(visitor, "5 stars")
    assert any("5 out of 5" in t for t in answer)
    assert not any("order number" in t for t in answer)
    # The visitor sees the bot's words as Rasa utters them, a moment before Rasa saves the turn.
    events = await wait_tracker(stack.tracker_db, cid, lambda ev: any(
        e["event"] == "slot" and e.get("name") == "handoff_rating" for e in ev))
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"}["handoff_rating"] == 5.0
    await visitor.close()
