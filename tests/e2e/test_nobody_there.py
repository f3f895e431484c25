"""When no person can take over, end to end on the real stack (trained model, rasa run with our
channel, the action server, the gateway): the visitor leaves a message that becomes a ticket in the
inbox; a waiting visitor can go back to the bot or leave a message instead."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
import yaml

from handoff_channel.devstack import Stack
from handoff_channel.settings import REPO_ROOT

from ..conftest import AGENTS, PASSWORD
from ..support import AgentClient, Visitor
from .test_handoff_loop import ask_for_human

pytestmark = pytest.mark.e2e

RESPONSES = yaml.safe_load((REPO_ROOT / "bot" / "domain.yml").read_text())["responses"]


def says(response: str) -> str:
    """A fragment of a response's text that does not depend on slots: what the visitor must see."""
    text = RESPONSES[response][0]["text"]
    return text.split("{")[0].strip()[:40] or text


@pytest.fixture
async def everyone_away(stack: Stack) -> AsyncIterator[list[AgentClient]]:
    clients = []
    for username in AGENTS:
        client = AgentClient(stack.gateway_url)
        await client.login(username, PASSWORD)
        await client.ok("POST", "/api/me/availability", {"availability": "away"})
        clients.append(client)
    yield clients
    for client in clients:
        await client.ok("POST", "/api/me/availability", {"availability": "available"})
        await client.close()


async def leave_message(visitor: Visitor, issue: str) -> None:
    await visitor.wait_text(says("utter_ask_ticket_email"))
    await visitor.say("my email is not here")
    await visitor.wait_text(says("utter_invalid_email"))
    await visitor.say("jo.visitor@example.com")
    await visitor.wait_text(says("utter_ask_ticket_issue"))
    await visitor.say(issue)
    await visitor.wait_text(says("utter_ticket_created"))


async def test_with_every_agent_away_the_visitor_leaves_a_message_that_becomes_a_ticket(
    stack: Stack, everyone_away: list[AgentClient]
) -> None:
    sarah = everyone_away[0]
    stream = await sarah.stream()
    visitor = Visitor(stack.gateway_url)
    cid = await visitor.connect()
    await visitor.say("I want to talk to a human")
    await visitor.wait_text(says("utter_nobody_available"))
    await leave_message(visitor, "My parcel arrived broken and I need a replacement")

    created = await stream.wait_for(lambda e: e["type"] == "ticket_created" and e["conversation_id"] == cid)
    ticket = created["ticket"]
    assert ticket["email"] == "jo.visitor@example.com" and "parcel arrived broken" in ticket["issue"]
    assert ticket["why"] == "no_agents" and ticket["reason"] == "explicit_request" and ticket["status"] == "open"
    listed = await sarah.ok("GET", "/api/tickets")
    assert ticket["id"] in [t["id"] for t in listed["tickets"]]
    detail = await sarah.conversation(cid)
    # Nobody was there: the conversation never entered the queue, and the bot never went quiet.
    assert detail["status"] == "bot"
    assert "handoff_requested" not in [t["kind"] for t in detail["timeline"]]
    assert not any("connecting you" in t.lower() for t in visitor.texts())

    done = await sarah.ok("POST", f"/api/tickets/{ticket['id']}/close", {"note": "sent a replacement"})
    assert done["status"] == "done" and done["closed_by"] == "sarah"
    status, again = await sarah.request("POST", f"/api/tickets/{ticket['id']}/close", {})
    assert status == 409 and again["error"]["code"] == "ticket_already_done"
    await visitor.close()


async def test_a_waiting_visitor_who_says_never_mind_gets_the_bot_back(stack: Stack, sarah: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    await visitor.say("never mind, forget it")
    await visitor.wait_text(says("utter_handback_cancelled"))
    detail = await sarah.conversation(cid)
    assert detail["status"] == "bot"
    cancelled = [t for t in detail["timeline"] if t["kind"] == "cancelled"]
    assert cancelled and cancelled[-1]["actor"] == "visitor" and cancelled[-1]["detail"]["choice"] == "cancel"
    await visitor.say("what are your opening hours?")
    await visitor.wait_text("9:00-18:00")  # the bot answers again
    await visitor.close()


async def test_a_waiting_visitor_who_picks_leave_a_message_gets_the_form_and_a_ticket(
    stack: Stack, sarah: AgentClient
) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    stream = await sarah.stream()
    await visitor.say("/handoff_leave_message")  # the "Leave a message" button of the unclaimed offer
    await leave_message(visitor, "Please call me back about my refund")
    created = await stream.wait_for(lambda e: e["type"] == "ticket_created" and e["conversation_id"] == cid)
    assert created["ticket"]["why"] == "unclaimed" and created["ticket"]["email"] == "jo.visitor@example.com"
    assert (await sarah.conversation(cid))["status"] == "bot"
    await visitor.close()
