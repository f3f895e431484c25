"""The handoff loop end to end: a socket.io visitor, the real bot (rasa run with our channel and the
action server), and an agent on the inbox API with SSE."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest

from handoff_channel.devstack import Stack

from ..support import AgentClient, Visitor
from .tracker import backdate, kinds, tracker_events, wait_tracker

pytestmark = pytest.mark.e2e


async def ask_for_human(stack: Stack, agent: AgentClient, text: str = "I want to talk to a human") -> tuple[Visitor, str]:
    visitor = Visitor(stack.gateway_url)
    cid = await visitor.connect()
    stream = await agent.stream()
    await visitor.say(text)
    await visitor.wait_text("connecting you")
    await visitor.wait_text("in the queue")  # the queue position follows the handoff
    await stream.wait_for(lambda e: e["type"] == "conversation_updated" and e["conversation_id"] == cid
                          and e["conversation"]["status"] == "queued")
    return visitor, cid


async def test_visitor_reaches_an_agent_and_gets_the_bot_back(stack: Stack, sarah: AgentClient) -> None:
    stream = await sarah.stream()
    visitor = Visitor(stack.gateway_url)
    cid = await visitor.connect()

    ack = await visitor.say("hi there")
    assert ack["ok"] is True
    await visitor.wait_for(lambda ms: len(ms) >= 1)  # the bot greets back
    await visitor.say("where is my order 12345?")
    await visitor.wait_text("12345")
    await visitor.say("I want to talk to a human")
    connecting = await visitor.wait_text("connecting you")
    assert connecting["text"]
    # The stock widget shows the visitor their place in the queue as plain text.
    place = await visitor.wait_text("in the queue")
    assert place["text"].startswith("You're number ")

    # The conversation lands in the queue, live, with a reason and a summary that knows the order.
    queued = await stream.wait_for(lambda e: e["type"] == "conversation_updated" and e["conversation_id"] == cid
                                   and e["conversation"]["status"] == "queued")
    assert queued["timeline"]["kind"] == "handoff_requested"
    unassigned = await sarah.ok("GET", "/api/conversations?view=unassigned")
    assert cid in [c["id"] for c in unassigned["conversations"]]
    detail = await sarah.conversation(cid)
    assert detail["reason"] == "explicit_request"
    assert "12345" in detail["handoff"]["summary"]["text"]
    roles = [m["role"] for m in detail["messages"]]
    assert roles[:2] == ["visitor", "bot"] and "bot" in roles
    visitor_turns = [m for m in detail["messages"] if m["role"] == "visitor"]
    assert visitor_turns[-1]["meta"]["intent"] == "request_human"

    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    await visitor.wait_text("Sarah joined the chat")
    await sarah.ok("POST", f"/api/conversations/{cid}/messages", {"text": "Hi, Sarah here. Let me check order 12345."})
    await visitor.wait_text("Sarah here")

    await visitor.say("thanks, it is late by a week")
    forwarded = await stream.wait_for(lambda e: e["type"] == "message_created" and e["conversation_id"] == cid
                                      and e["message"]["text"] == "thanks, it is late by a week")
    assert forwarded["message"]["role"] == "visitor"

    await sarah.ok("POST", f"/api/conversations/{cid}/handback",
                   {"outcome": "resolved", "note": "Reshipped the parcel", "facts": {"order_number": "12346"}})
    back = await visitor.wait_text("back with the assistant")
    assert "Sarah" in back["text"]

    n = len(visitor.received)
    await visitor.say("what are your opening hours?")
    await visitor.wait_for(lambda ms: len(ms) > n)
    assert any(w in " ".join(visitor.texts()[n:]).lower() for w in ("mon", "9", "open"))

    # Rasa's own record shows the pause, the human stretch and the resume, in that order.
    events = await wait_tracker(stack.tracker_db, cid, lambda ev: "action:action_handback" in kinds(ev))
    k = kinds(events)
    pause, resume = k.index("pause"), k.index("resume")
    assert pause < resume < k.index("user:handoff_done") < k.index("action:action_handback")
    stretch = events[pause:resume]
    assert any(e["event"] == "bot" and (e.get("metadata") or {}).get("human_agent") == "sarah" for e in stretch)
    assert any(e["event"] == "user" and e.get("text") == "thanks, it is late by a week" for e in stretch)
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots.get("handoff_outcome") == "resolved"
    assert slots.get("order_number") == "12346"
    await visitor.close()


async def test_bot_stays_silent_while_a_human_owns_the_conversation(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    await visitor.wait_text("joined the chat")
    stream = await sarah.stream()
    before = len(visitor.received)
    sent = [f"message number {i}" for i in range(10)]
    for text in sent:
        assert (await visitor.say(text))["ok"]
    await stream.wait_for(lambda e: e.get("message", {}) is not None and (e.get("message") or {}).get("text") == sent[-1])
    forwarded = [e["message"]["text"] for e in stream.events
                 if e["type"] == "message_created" and e["message"]["role"] == "visitor"]
    assert forwarded == sent
    await asyncio.sleep(1.5)  # longer than a queued line waits before Rasa records it
    assert visitor.received[before:] == []
    detail = await sarah.conversation(cid)
    assert detail["status"] == "assigned"
    assert [m["text"] for m in detail["messages"] if m["role"] == "bot"][-1].lower().startswith("connecting you")
    # Rasa gets a claimed stretch in batches; the hand-back records all of it first, in order,
    # inside the pause: the bot resumes knowing every line and never answered one.
    await sarah.ok("POST", f"/api/conversations/{cid}/handback", {"outcome": "continue"})
    await visitor.wait_text("back with the assistant")
    events = await wait_tracker(stack.tracker_db, cid, lambda ev: "action:action_handback" in kinds(ev))
    k = kinds(events)
    pause, resume = k.index("pause"), k.index("resume")
    recorded = [e for e in events[pause:resume] if e["event"] == "user"][-10:]
    assert [e.get("text") for e in recorded] == sent
    # ... each with what NLU made of it (parsed together, as a batch), for the record.
    assert all(e["parse_data"]["intent"]["name"] and "sentiment" in e["parse_data"] for e in recorded)
    assert not any(e["event"] == "action" and e.get("name") not in ("action_listen",) for e in events[pause:resume])
    await visitor.close()


async def test_restart_or_gibberish_while_queued_does_not_rerun_the_handoff(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    before = len(visitor.received)
    for text in ("/restart", "asdkjh qwpoeiru zxmcn", "I want to talk to a human"):
        assert (await visitor.say(text))["ok"]
    await wait_tracker(stack.tracker_db, cid, lambda ev: any(e["event"] == "user" and e.get("text") == "I want to talk to a human"
                                                              for e in ev[-3:]))
    assert visitor.received[before:] == []
    detail = await sarah.conversation(cid)
    assert detail["status"] == "queued"
    assert [t["kind"] for t in detail["timeline"]].count("handoff_requested") == 1
    events = tracker_events(stack.tracker_db, cid)
    assert kinds(events).count("action:action_handoff") == 1
    assert "restart" not in kinds(events) and kinds(events)[-1].startswith("user:")
    await visitor.close()


async def test_gibberish_after_hand_back_does_not_silently_repause(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    await sarah.ok("POST", f"/api/conversations/{cid}/handback", {"outcome": "continue"})
    await visitor.wait_text("back with the assistant")
    for gibberish in ("qqqq wwww eeee", "zxcv asdf"):
        n = len(visitor.received)
        await visitor.say(gibberish)
        await visitor.wait_for(lambda ms: len(ms) > n)
    n = len(visitor.received)
    await visitor.say("what are your opening hours?")
    await visitor.wait_for(lambda ms: len(ms) > n)
    assert (await sarah.conversation(cid))["status"] == "bot"
    # The visitor sees the answer as Rasa utters it; wait until Rasa has saved that turn.
    events = await wait_tracker(stack.tracker_db, cid, lambda ev: any(
        e["event"] == "user" and e.get("text") == "what are your opening hours?" for e in ev) and ev[-1]["event"] != "user")
    since_handback = kinds(events)[kinds(events).index("user:handoff_done"):]
    assert "pause" not in since_handback
    await visitor.close()


async def test_visitor_silent_past_session_expiry_still_reaches_the_human(stack: Stack, sarah: AgentClient) -> None:
    # Queued: Rasa records each line within a second (a claimed stretch waits for the hand-back).
    visitor, cid = await ask_for_human(stack, sarah)
    await wait_tracker(stack.tracker_db, cid, lambda ev: any(e["event"] == "bot" and (e.get("metadata") or {}).get("handoff_system") for e in ev))
    backdate(stack.tracker_db, cid, 3 * 3600)  # the bot's session_expiration_time is 60 minutes
    stream = await sarah.stream()
    before = len(visitor.received)
    await visitor.say("sorry, I was away. still there?")
    await stream.wait_for(lambda e: e["type"] == "message_created" and (e["message"] or {}).get("text") == "sorry, I was away. still there?")
    await wait_tracker(stack.tracker_db, cid, lambda ev: ev[-1].get("text") == "sorry, I was away. still there?")
    assert visitor.received[before:] == []
    assert "session_started" not in kinds(tracker_events(stack.tracker_db, cid))[-3:]
    await visitor.close()


async def test_visitor_who_reconnects_receives_what_the_agent_sent_meanwhile(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    await visitor.wait_text("joined the chat")
    await visitor.close()
    await sarah.ok("POST", f"/api/conversations/{cid}/messages", {"text": "Are you still there?"})
    await sarah.ok("POST", f"/api/conversations/{cid}/messages", {"text": "I found your parcel."})
    again = Visitor(stack.gateway_url, session_id=cid)
    assert await again.connect() == cid
    await again.wait_text("I found your parcel")
    assert again.texts() == ["Are you still there?", "I found your parcel."]
    await again.close()


class DeadSocket:
    """A widget whose network drops without a word: an engine.io long-polling session that joins
    the visitor's session and then never polls or answers a ping again."""

    def __init__(self, url: str) -> None:
        self.base = f"{url}/socket.io/?EIO=4&transport=polling"
        self.http = aiohttp.ClientSession()

    async def join(self, session_id: str) -> None:
        async with self.http.get(self.base) as r:
            handshake = json.loads((await r.text())[1:])
        url = f"{self.base}&sid={handshake['sid']}"
        for body in ("40", '42["session_request",{"session_id":"%s"}]' % session_id):
            async with self.http.post(url, data=body) as r:
                assert r.status == 200, await r.text()
        confirmed = ""
        while "session_confirm" not in confirmed:
            async with self.http.get(url) as r:
                confirmed += await r.text()

    async def close(self) -> None:
        await self.http.close()


@pytest.mark.timeout(180)
async def test_a_reply_sent_to_a_socket_whose_network_died_reaches_the_visitor_s_next_one(
    stack: Stack, sarah: AgentClient
) -> None:
    """The visitor's phone loses its network: the gateway keeps its socket until the ping times out
    (~40 s) and sends the agent's reply into it. The widget reconnects on a new socket before that.
    The reply must still reach it, once, when the old socket is found dead."""
    visitor, cid = await ask_for_human(stack, sarah)
    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    await visitor.wait_text("joined the chat")
    dead = DeadSocket(stack.gateway_url)
    await dead.join(cid)
    await visitor.close()  # the page's own socket closes cleanly; the dead one stays in the room
    await sarah.ok("POST", f"/api/conversations/{cid}/messages", {"text": "Your refund is on its way."})
    await asyncio.sleep(1.5)  # the gateway has counted it delivered (into the dead socket)
    again = Visitor(stack.gateway_url, session_id=cid)
    assert await again.connect() == cid
    try:
        await again.wait_text("refund is on its way", timeout=90)
        await asyncio.sleep(2)
        assert again.texts().count("Your refund is on its way.") == 1
    finally:
        await again.close()
        await dead.close()


async def test_a_visitor_with_two_tabs_gets_every_reply_once_in_order_in_both(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    second = Visitor(stack.gateway_url, session_id=cid)  # the shop open in a second tab
    assert await second.connect() == cid
    closed = Visitor(stack.gateway_url, session_id=cid)  # and a third tab, closed again
    assert await closed.connect() == cid
    await closed.close()
    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    for i in range(5):
        await sarah.ok("POST", f"/api/conversations/{cid}/messages", {"text": f"Reply number {i}"})
    for tab in (visitor, second):
        await tab.wait_text("Reply number 4")
        assert [t for t in tab.texts() if t.startswith("Reply number")] == [f"Reply number {i}" for i in range(5)]
    await visitor.close()
    await second.close()


async def test_sse_client_reconnecting_with_last_event_id_gets_what_it_missed(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    first = await sarah.stream()
    await sarah.ok("POST", f"/api/conversations/{cid}/notes", {"text": "note one"})
    seen = await first.wait_for(lambda e: (e.get("message") or {}).get("text") == "note one")
    first.task.cancel()  # type: ignore[union-attr]
    await sarah.ok("POST", f"/api/conversations/{cid}/notes", {"text": "note two"})
    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    resumed = await sarah.stream(last_event_id=seen["id"])
    await resumed.wait_for(lambda e: e["type"] == "conversation_updated" and e["conversation"]["status"] == "assigned")
    texts = [(e.get("message") or {}).get("text") for e in resumed.events]
    assert "note two" in texts and "note one" not in texts
    assert resumed.ids == sorted(resumed.ids) and resumed.ids[0] == seen["id"] + 1
    await visitor.close()


async def test_messages_carry_no_markup_risk_they_are_stored_verbatim_as_text(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    payload = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
    await visitor.say(payload)
    detail = await sarah.conversation(cid)
    assert detail["messages"][-1]["text"] == payload and detail["messages"][-1]["role"] == "visitor"
    await visitor.close()


async def test_rasa_answers_a_turn_or_hand_back_sent_again_with_retry_from_its_record(stack: Stack) -> None:
    """What the gateway does after it died between Rasa's answer and finishing the item: it sends
    the same turn (or hand-back) again with ``retry``. Rasa must answer as before and record it once."""
    cid = "retry-" + uuid.uuid4().hex[:12]
    base = stack.rasa_url + "/webhooks/handoff"
    headers = {"X-Handoff-Token": stack.token}
    async with aiohttp.ClientSession(headers=headers) as http:
        async def post(path: str, body: dict[str, object]) -> dict[str, object]:
            async with http.post(base + path, json=body) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.json()  # type: ignore[no-any-return]

        turn = {"conversation_id": cid, "message_id": "gw-1", "text": "what are your opening hours?", "metadata": {}}
        first = await post("/turn", turn)
        again = await post("/turn", dict(turn, retry=True))

        def texts(answer: dict[str, object]) -> list[object]:
            return [m.get("text") for m in answer["messages"]]  # type: ignore[attr-defined]

        assert texts(again) == texts(first) and texts(first) and again.get("replayed") is True
        await post("/turn", {"conversation_id": cid, "message_id": "gw-2", "text": "I want to talk to a human",
                             "metadata": {}})
        handback = {"conversation_id": cid, "handback_id": "hb-1", "outcome": "resolved", "agent": "sarah",
                    "agent_name": "Sarah", "note": "", "facts": {}}
        back = await post("/handback", handback)
        back_again = await post("/handback", dict(handback, retry=True))
        assert texts(back_again) == texts(back) and texts(back) and back_again.get("replayed") is True
    events = tracker_events(stack.tracker_db, cid)
    user_ids = [e.get("message_id") for e in events if e["event"] == "user"]
    assert user_ids.count("gw-1") == 1 and user_ids.count("gw-2") == 1
    assert kinds(events).count("user:handoff_done") == 1 and kinds(events).count("resume") == 1


async def test_rasa_keeps_its_loaded_model_out_of_full_garbage_collections(stack: Stack) -> None:
    """Rasa with its model loaded holds hundreds of thousands of objects: a full collection that
    walks them all stalls every bot turn for hundreds of milliseconds. The channel freezes them
    once the model is loaded, and collects the middle and the old generation ten times less often
    than Python would."""
    async with aiohttp.ClientSession() as http:
        async with http.get(stack.rasa_url + "/webhooks/handoff/") as resp:
            health = await resp.json()
    assert health["model_ready"] is True
    assert health["gc"]["frozen"] > 100_000, health
    young, middle, old = health["gc"]["thresholds"]
    assert middle >= 100 and middle * old >= 1000, health
