"""Outbound webhooks: a local aiohttp server receives signed events in feed order; notes never
leave; a failing receiver is retried, then skipped, and never blocks the service."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from handoff_channel.bus import MemoryEventBus
from handoff_channel.gateway.webhooks import SIGNATURE_HEADER, WebhookSender, sign
from handoff_channel.models import Agent, Handoff
from handoff_channel.service import HandoffService
from handoff_channel.settings import Settings
from handoff_channel.store import SqlConversationStore

from ..support import free_port

SECRET = "webhook-secret"


class Receiver:
    """A webhook endpoint: records what it gets; answers 500 to the first ``fail_first`` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[dict[str, Any], bytes, str]] = []
        self.fail_first = fail_first
        self.calls = 0
        self.changed = asyncio.Event()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= self.fail_first:
            return web.Response(status=500)
        body = await request.read()
        self.received.append((json.loads(body), body, request.headers.get(SIGNATURE_HEADER, "")))
        self.changed.set()
        return web.Response(status=204)

    async def wait_for(self, n: int, timeout: float = 10.0, event: str = "") -> None:
        async def loop() -> None:
            while len(self.received) < n or (event and event not in self.events()):
                self.changed.clear()
                await self.changed.wait()
        try:
            await asyncio.wait_for(loop(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"the receiver got only {self.events()}") from None

    def events(self) -> list[str]:
        return [p["event"] for p, _, _ in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", r.port).start()
    yield r
    await runner.cleanup()


async def make(tmp_path: Path, urls: tuple[str, ...]) -> tuple[HandoffService, WebhookSender]:
    settings = Settings(webhook_urls=urls, webhook_secret=SECRET)
    store = SqlConversationStore(f"sqlite:///{tmp_path / 'h.db'}")
    await store.open()
    bus = MemoryEventBus()
    await bus.open()
    sender = WebhookSender(store, bus, settings, retry_delays=(0.01, 0.01))
    await sender.start()
    return HandoffService(store, bus, settings), sender


def test_the_signature_is_the_hmac_sha256_of_the_body() -> None:
    body = b'{"event":"handoff.requested"}'
    assert sign(body, SECRET) == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def test_handoff_events_arrive_signed_in_order_and_notes_stay_inside(tmp_path: Path, receiver: Receiver) -> None:
    service, sender = await make(tmp_path, (receiver.url,))
    sarah, tom = Agent("sarah", "Sarah"), Agent("tom", "Tom")
    try:
        await service.store.create_agent("tom", "Tom", "hash")
        await service.visitor_message("c-1", "I want a human")
        await service.record_handoff("c-1", Handoff(reason="explicit_request"))
        await service.claim("c-1", sarah)
        await service.add_note("c-1", sarah, "private: angry customer")
        await service.transfer("c-1", sarah, "tom", "billing")
        await service.agent_reply("c-1", tom, "Tom here")
        await service.resolve("c-1", tom)
        await receiver.wait_for(1, event="handoff.resolved")
        events = receiver.events()
        assert events[:2] == ["message.created", "handoff.requested"]
        for name in ("handoff.assigned", "handoff.transferred", "handoff.resolved"):
            assert name in events
        assert events.index("handoff.requested") < events.index("handoff.assigned") < events.index("handoff.transferred") < events.index("handoff.resolved")
        texts = [p["message"]["text"] for p, _, _ in receiver.received if p["event"] == "message.created"]
        assert "Tom here" in texts and not any("private" in t for t in texts)
        ids = [p["id"] for p, _, _ in receiver.received]
        assert ids == sorted(ids)
        for _payload, body, signature in receiver.received:
            assert hmac.compare_digest(signature, sign(body, SECRET))
    finally:
        await sender.close()
        await service.store.close()


async def test_a_failing_receiver_is_retried_and_never_blocks_the_service(tmp_path: Path, receiver: Receiver) -> None:
    receiver.fail_first = 2
    service, sender = await make(tmp_path, (receiver.url, "http://127.0.0.1:9/unreachable"))
    try:
        await service.visitor_message("c-1", "I want a human")
        conv = await asyncio.wait_for(service.record_handoff("c-1", Handoff(reason="explicit_request")), 2)
        assert conv.status.value == "queued"
        await receiver.wait_for(2)
        assert receiver.calls >= 4  # two refused, then delivered
        assert receiver.events()[:2] == ["message.created", "handoff.requested"]
    finally:
        await sender.close()
        await service.store.close()
