"""Bad input to every inbox route gets a clear 4xx and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from handoff_channel.devstack import Stack

from ..conftest import PASSWORD
from ..support import AgentClient
from .test_handoff_loop import ask_for_human

pytestmark = pytest.mark.e2e

ROUTES = [
    ("GET", "/api/me"),
    ("POST", "/api/logout"),
    ("GET", "/api/conversations"),
    ("GET", "/api/conversations/{cid}"),
    ("POST", "/api/conversations/{cid}/claim"),
    ("POST", "/api/conversations/{cid}/messages"),
    ("POST", "/api/conversations/{cid}/notes"),
    ("POST", "/api/conversations/{cid}/handback"),
    ("POST", "/api/conversations/{cid}/resolve"),
    ("GET", "/api/events"),
    ("GET", "/api/events/poll?after=0&timeout=0"),
    ("GET", "/api/canned"),
    ("POST", "/api/canned"),
    ("POST", "/api/me/availability"),
    ("POST", "/api/me/heartbeat"),
    ("GET", "/api/agents"),
    ("POST", "/api/agents/sarah"),
    ("POST", "/api/conversations/{cid}/transfer"),
    ("POST", "/api/conversations/{cid}/escalate"),
    ("GET", "/api/directory"),
    ("GET", "/api/tickets"),
    ("POST", "/api/tickets/1/close"),
]


async def snapshot(agent: AgentClient, cid: str) -> Any:
    detail = await agent.conversation(cid)
    return detail["status"], detail["assignee"], len(detail["messages"]), len(detail["timeline"])


@pytest.mark.parametrize("credentials", [None, "Bearer not-a-real-token", "Basic c2FyYWg6eA=="])
async def test_every_route_refuses_missing_or_wrong_credentials(stack: Stack, sarah: AgentClient, credentials: Any) -> None:
    _visitor, cid = await ask_for_human(stack, sarah)
    before = await snapshot(sarah, cid)
    anonymous = AgentClient(stack.gateway_url)
    try:
        for method, path in ROUTES:
            headers = {"Authorization": credentials} if credentials else {}
            status, body = await anonymous.request(method, path.format(cid=cid), {"text": "x"} if method == "POST" else None,
                                                   headers=headers)
            assert status == 401, (method, path, status, body)
            assert body["error"]["code"] == "unauthorized" and body["error"]["message"]
    finally:
        await anonymous.close()
    assert await snapshot(sarah, cid) == before
    await _visitor.close()


async def test_wrong_password_is_refused(stack: Stack) -> None:
    client = AgentClient(stack.gateway_url)
    status, body = await client.request("POST", "/api/login", {"username": "sarah", "password": "wrong-password"})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = await client.request("POST", "/api/login", raw=b"{not json")
    assert status == 400 and body["error"]["code"] == "invalid_json"
    await client.close()


async def test_malformed_and_unknown_and_wrong_state_requests_change_nothing(stack: Stack, sarah: AgentClient, tom: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    before = await snapshot(sarah, cid)

    cases = [
        (sarah, "POST", f"/api/conversations/{cid}/messages", b"{\"text\": ", 400, "invalid_json"),
        (sarah, "POST", f"/api/conversations/{cid}/messages", b"[1, 2]", 400, "invalid_payload"),
        (sarah, "POST", f"/api/conversations/{cid}/messages", b"{\"text\": 42}", 400, "invalid_payload"),
        (sarah, "POST", f"/api/conversations/{cid}/messages", b"{\"text\": \"hello\"}", 409, "not_assignee"),
        (sarah, "POST", f"/api/conversations/{cid}/messages", ("{\"text\": \"" + "x" * 5000 + "\"}").encode(), 400, "message_too_long"),
        (sarah, "POST", f"/api/conversations/{cid}/messages", b"{\"text\": \"" + b"y" * 70000 + b"\"}", 413, "payload_too_large"),
        (sarah, "POST", f"/api/conversations/{cid}/handback", b"{\"outcome\": \"teleported\"}", 400, "invalid_payload"),
        (sarah, "POST", f"/api/conversations/{cid}/notes", b"{\"text\": \"   \"}", 400, "invalid_payload"),
        (sarah, "GET", "/api/conversations?view=everything", None, 400, "invalid_payload"),
        (sarah, "GET", "/api/conversations/does-not-exist", None, 404, "conversation_not_found"),
        (sarah, "POST", "/api/conversations/does-not-exist/claim", None, 404, "conversation_not_found"),
        (sarah, "POST", "/api/conversations/does-not-exist/messages", b"{\"text\": \"hi\"}", 404, "conversation_not_found"),
        (sarah, "POST", "/api/conversations/does-not-exist/handback", b"{}", 404, "conversation_not_found"),
        (sarah, "GET", "/api/events/poll?after=abc", None, 400, "invalid_payload"),
    ]
    for client, method, path, raw, status, code in cases:
        got, body = await client.request(method, path, raw=raw)
        assert (got, body["error"]["code"]) == (status, code), (path, raw and raw[:40], got, body)
        assert body["error"]["message"]
    assert await snapshot(sarah, cid) == before

    await sarah.ok("POST", f"/api/conversations/{cid}/claim")
    status, body = await tom.request("POST", f"/api/conversations/{cid}/claim")
    assert status == 409 and body["error"]["code"] == "already_assigned" and body["error"]["detail"]["assignee"] == "sarah"
    status, body = await tom.request("POST", f"/api/conversations/{cid}/messages", {"text": "tom here"})
    assert status == 409 and body["error"]["code"] == "not_assignee"
    await sarah.ok("POST", f"/api/conversations/{cid}/resolve", {"note": "done"})
    after_resolve = await snapshot(sarah, cid)
    for client, path in ((tom, "claim"), (sarah, "resolve"), (sarah, "handback")):
        status, body = await client.request("POST", f"/api/conversations/{cid}/{path}", {})
        assert status == 409 and body["error"]["code"] == "invalid_transition", (path, body)
    status, body = await sarah.request("POST", f"/api/conversations/{cid}/messages", {"text": "too late"})
    assert status == 409
    assert await snapshot(sarah, cid) == after_resolve
    await visitor.close()


async def test_transfer_and_supervisor_routes_refuse_what_they_must(stack: Stack, sarah: AgentClient, tom: AgentClient) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    boss = AgentClient(stack.gateway_url)
    await boss.login("boss", PASSWORD)
    try:
        assert (await sarah.request("POST", "/api/me/heartbeat"))[0] == 204
        cases = [
            (sarah, "GET", "/api/agents", None, 403, "forbidden"),
            (sarah, "POST", "/api/agents/tom", {"capacity": 3}, 403, "forbidden"),
            (boss, "POST", "/api/agents/nobody", {"capacity": 3}, 404, "not_found"),
            (boss, "POST", "/api/agents/tom", {"capacity": "lots"}, 400, "invalid_payload"),
            (boss, "POST", "/api/agents/tom", {}, 400, "invalid_payload"),
            (sarah, "POST", f"/api/conversations/{cid}/transfer", {"to": "tom"}, 409, "invalid_transition"),
            (sarah, "POST", "/api/conversations/does-not-exist/transfer", {"to": "tom"}, 404, "conversation_not_found"),
            (sarah, "POST", "/api/me/availability", {"availability": "asleep"}, 400, "invalid_payload"),
        ]
        for client, method, path, body, status, code in cases:
            got, answer = await client.request(method, path, body)
            assert (got, answer["error"]["code"]) == (status, code), (path, body, got, answer)

        await sarah.ok("POST", f"/api/conversations/{cid}/claim")
        for body, status, code in (({"to": "nobody"}, 404, "not_found"), ({"to": 7}, 400, "invalid_payload"),
                                   ({"to": "sarah"}, 400, "invalid_payload")):
            got, answer = await sarah.request("POST", f"/api/conversations/{cid}/transfer", body)
            assert (got, answer["error"]["code"]) == (status, code), (body, answer)
        got, answer = await tom.request("POST", f"/api/conversations/{cid}/transfer", {"to": "tom"})
        assert (got, answer["error"]["code"]) == (409, "not_assignee")

        moved = await sarah.ok("POST", f"/api/conversations/{cid}/transfer", {"to": "tom", "note": "billing question"})
        assert moved["assignee"] == "tom" and moved["timeline"][-1]["kind"] == "transferred"
        await visitor.wait_text("Tom joined the chat")

        updated = await boss.ok("POST", "/api/agents/tom", {"capacity": 7, "teams": ["billing"]})
        assert updated["capacity"] == 7 and updated["teams"] == ["billing"]
        overview = await boss.ok("GET", "/api/agents")
        tom_row = next(a for a in overview["agents"] if a["username"] == "tom")
        assert tom_row["load"] >= 1 and tom_row["capacity"] == 7
        assert isinstance(overview["queue_depth"], int) and overview["routing"] == "manual"
        rows = await sarah.ok("GET", "/api/conversations?view=open")
        assert all("queue_priority" in r and "urgent" in r for r in rows["conversations"])
    finally:
        await boss.close()
        await visitor.close()


async def test_escalation_team_transfer_and_ticket_routes_refuse_what_they_must(
    stack: Stack, sarah: AgentClient, tom: AgentClient
) -> None:
    visitor, cid = await ask_for_human(stack, sarah)
    try:
        cases = [
            (sarah, "POST", "/api/tickets/999999/close", {}, 404, "not_found"),
            (sarah, "GET", "/api/tickets?status=archived", None, 400, "invalid_payload"),
            (sarah, "POST", f"/api/conversations/{cid}/transfer", {"team": "nobody-team"}, 400, "invalid_payload"),
            (sarah, "POST", f"/api/conversations/{cid}/transfer", {"team": 5}, 400, "invalid_payload"),
            (sarah, "POST", f"/api/conversations/{cid}/escalate", {"note": 5}, 400, "invalid_payload"),
            (sarah, "POST", "/api/conversations/does-not-exist/escalate", {}, 404, "conversation_not_found"),
        ]
        for client, method, path, body, status, code in cases:
            got, answer = await client.request(method, path, body)
            assert (got, answer["error"]["code"]) == (status, code), (path, body, got, answer)
        await sarah.ok("POST", f"/api/conversations/{cid}/claim")
        got, answer = await tom.request("POST", f"/api/conversations/{cid}/escalate", {})
        assert (got, answer["error"]["code"]) == (409, "not_assignee")

        directory = await sarah.ok("GET", "/api/directory")
        assert {"sarah", "tom", "boss"} <= {a["username"] for a in directory["agents"]}
        escalated = await sarah.ok("POST", f"/api/conversations/{cid}/escalate", {"note": "wants a manager"})
        assert escalated["assignee"] == "boss" and escalated["timeline"][-1]["kind"] == "escalated"
        await visitor.wait_text("Bea Boss joined the chat")
        notes = [m for m in escalated["messages"] if m["role"] == "note"]
        assert "wants a manager" in notes[-1]["text"]
        # The note stays internal: the visitor only ever hears who joined.
        assert not any("manager" in t for t in visitor.texts())
    finally:
        await visitor.close()
