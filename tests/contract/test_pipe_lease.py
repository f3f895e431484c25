"""The Rasa pipe of two gateways sharing one PostgreSQL store: while Rasa is away longer than an
outbox lease lasts, one gateway keeps retrying a queued bot turn and the other must not start
sending the same turn as well. Rasa here is a stand-in HTTP server that answers 503 until it is
"back": the point is what reaches it, and how often."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, AsyncIterator

import pytest
import sqlalchemy as sa
from aiohttp import web

from handoff_channel.bus import MemoryEventBus
from handoff_channel.models import Role
from handoff_channel.rasa_pipe import RasaClient, RasaPipe
from handoff_channel.service import HandoffService
from handoff_channel.settings import Settings
from handoff_channel.store import SqlConversationStore

from ..support import free_port


class StandInRasa:
    def __init__(self) -> None:
        self.up = False
        self.turns: list[dict[str, Any]] = []
        self.refused = 0

    async def turn(self, request: web.Request) -> web.Response:
        if not self.up:
            self.refused += 1
            return web.json_response({"error": {"code": "not_ready"}}, status=503)
        body = await request.json()
        self.turns.append(body)
        return web.json_response({"messages": [{"text": f"answer to {body['text']}"}]})


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    admin = os.environ.get("HANDOFF_TEST_PG_URL")
    if not admin:
        pytest.fail("HANDOFF_TEST_PG_URL is not set: run `eval \"$(scripts/services.sh)\"` (make test does).")
    name = "handoff_t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", future=True)
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield admin.rsplit("/", 1)[0] + "/" + name
    with engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


async def test_a_turn_retried_past_its_lease_reaches_rasa_once(pg_url: str) -> None:
    rasa = StandInRasa()
    app = web.Application()
    app.router.add_post("/webhooks/handoff/turn", rasa.turn)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = Settings(rasa_url=f"http://127.0.0.1:{port}", rasa_token="t", rasa_timeout_s=5.0, rasa_retry_max_s=0.2)
    pipes, stores = [], []
    for instance in ("gw-a", "gw-b"):
        store = SqlConversationStore(pg_url)
        await store.open()
        service = HandoffService(store, MemoryEventBus(), settings)
        pipe = RasaPipe(store, service, RasaClient(settings), settings)
        pipe.owner = instance
        pipe.lease_ttl_s = 0.5  # Rasa stays away for several leases
        await pipe.start()
        stores.append(store)
        pipes.append(pipe)
    try:
        service_a = pipes[0].service
        await service_a.visitor_message("c-1", "where is my order?", client_id="v-1")
        await asyncio.sleep(3.0)  # six leases long; both sweepers look every second
        assert rasa.refused >= 3 and rasa.turns == []
        rasa.up = True
        for _ in range(100):
            if not await stores[0].conversations_with_pending_outbox():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # a second drainer, if there were one, would have sent it by now
        assert [t["text"] for t in rasa.turns] == ["where is my order?"]
        bot = [m.text for m in await stores[0].messages("c-1") if m.role is Role.BOT]
        assert bot == ["answer to where is my order?"]
    finally:
        for pipe in pipes:
            await pipe.close()
        for store in stores:
            await store.close()
        await runner.cleanup()
