"""Production mode, natively: two gateways behind a real nginx, two `rasa run` instances sharing a
PostgreSQL tracker store and a Redis lock store, the handoff store on PostgreSQL and the bus on
Redis; then the faults (kill -9 of a gateway, Redis restart, PostgreSQL down, Rasa restart).

PostgreSQL and Redis come from HANDOFF_TEST_PG_URL / HANDOFF_TEST_REDIS_URL (scripts/services.sh
starts them). The fault tests stop and restart those servers, so this module runs them itself."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from handoff_channel import auth
from handoff_channel.devstack import Stack
from handoff_channel.store import SqlConversationStore, sql

from ..conftest import PASSWORD
from ..support import AgentClient, Visitor, free_port, listening

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Prod:
    a: Stack
    b: Stack
    lb_url: str
    db_url: str
    redis_url: str
    nginx: subprocess.Popen[bytes]

    def gateway_urls(self) -> list[str]:
        return [self.a.gateway_url, self.b.gateway_url]


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `eval \"$(scripts/services.sh)\"` (make test does).")
    return value


def _health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
        return json.loads(r.read())


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if listening(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def _redis_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    parts = urlsplit(_env("HANDOFF_TEST_REDIS_URL"))
    return subprocess.run(["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379), *args],
                          capture_output=True, text=True)


def _start_redis() -> None:
    parts = urlsplit(_env("HANDOFF_TEST_REDIS_URL"))
    subprocess.run(["redis-server", "--bind", parts.hostname or "127.0.0.1", "--port", str(parts.port or 6379),
                    "--save", "", "--appendonly", "no", "--daemonize", "yes"], check=True, capture_output=True)
    deadline = time.time() + 10
    while _redis_cmd("ping").stdout.strip() != "PONG":
        assert time.time() < deadline, "redis did not come back"
        time.sleep(0.05)


def _pg_cluster() -> list[str]:
    if shutil.which("pg_lsclusters") is None:
        pytest.fail("the PostgreSQL fault test needs Debian's pg_ctlcluster (scripts/services.sh installs it)")
    first = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout.split()
    return first[:2]


@pytest.fixture(scope="module")
def prod(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    admin = _env("HANDOFF_TEST_PG_URL")
    redis_url = _env("HANDOFF_TEST_REDIS_URL")
    tag = uuid.uuid4().hex[:10]
    handoff_db, rasa_db = f"handoff_prod_{tag}", f"rasa_prod_{tag}"
    admin_engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", future=True, pool_pre_ping=True)
    with admin_engine.connect() as c:
        for name in (handoff_db, rasa_db):
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    pg = urlsplit(admin)
    db_url = f"{admin.rsplit('/', 1)[0]}/{handoff_db}"
    rd = urlsplit(redis_url)
    root = tmp_path_factory.mktemp("prod")
    # The production files themselves: deploy/endpoints.production.yml (PostgreSQL tracker store,
    # Redis lock store) filled from the environment, and deploy/nginx-native.sh (the production
    # routing: sticky by client address, WebSocket upgrade, unbuffered SSE).
    rasa_env = {
        "RASA_TRACKER_DB_HOST": pg.hostname or "127.0.0.1", "RASA_TRACKER_DB_PORT": str(pg.port or 5432),
        "RASA_TRACKER_DB_NAME": rasa_db, "RASA_TRACKER_DB_USER": pg.username or "",
        "RASA_TRACKER_DB_PASSWORD": pg.password or "",
        "RASA_LOCK_REDIS_HOST": rd.hostname or "127.0.0.1", "RASA_LOCK_REDIS_PORT": str(rd.port or 6379),
        "RASA_LOCK_REDIS_PASSWORD": rd.password or "", "RASA_LOCK_REDIS_DB": "1",
    }
    bus = f"{redis_url}?channel_prefix=handoff{tag}"
    token = "prod-token-" + tag
    actions_port = free_port()
    common = dict(model=model, token=token, db_url=db_url, bus_url=bus, actions_port=actions_port,
                  endpoints=str(REPO / "deploy" / "endpoints.production.yml"), extra_env=rasa_env)
    a = Stack(run_dir=root / "a", gateway_port=free_port(), rasa_port=free_port(), **common)  # type: ignore[arg-type]
    b = Stack(run_dir=root / "b", gateway_port=free_port(), rasa_port=free_port(), **common)  # type: ignore[arg-type]
    a.create_agent("sarah", "Sarah", PASSWORD, supervisor=True)
    a.create_agent("tom", "Tom", PASSWORD)
    lb_port = free_port()
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is needed for the load-balancer tests (scripts/services.sh installs it)")
    a.start_actions()
    a.start_rasa()
    time.sleep(5)  # let the first instance create Rasa's tracker tables before the second races it
    b.start_rasa()
    a.start_gateway()
    b.start_gateway()
    nginx = subprocess.Popen(
        [str(REPO / "deploy" / "nginx-native.sh"), str(root / "nginx"), str(lb_port), str(a.gateway_port), str(b.gateway_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin"),
    )
    try:
        _wait_port(lb_port)
        a.wait_ready(timeout=300)
        b.wait_ready(timeout=300)
        yield Prod(a, b, f"http://127.0.0.1:{lb_port}", db_url, redis_url, nginx)
    finally:
        nginx.terminate()
        nginx.wait(10)
        a.stop()
        b.stop()
        with admin_engine.connect() as c:
            for name in (handoff_db, rasa_db):
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


def _diagnosis(prod: Prod, cid: str, since: str) -> str:
    """What the store and the logs say about a conversation, for a failure message: the CI output
    is all one sees of a run on another machine."""
    lines = [f"conversation {cid}:"]
    engine = sa.create_engine(prod.db_url, future=True)
    try:
        with engine.connect() as c:
            for table, order in ((sql.outbox, sql.outbox.c.id), (sql.leases, sql.leases.c.conversation_id),
                                 (sql.messages, sql.messages.c.seq)):
                try:
                    rows = c.execute(sa.select(table).where(table.c.conversation_id == cid).order_by(order)).mappings().all()
                except Exception as exc:
                    lines.append(f"  {table.name}: {exc}")
                    continue
                lines.append(f"  {table.name}: {len(rows)} row(s)")
                lines += [f"    {dict(r)}"[:300] for r in rows]
    finally:
        engine.dispose()
    for stack in (prod.a, prod.b):
        for name in ("gateway", "rasa"):
            path = stack.run_dir / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            picked = [ln for ln in text.splitlines() if ln[:19] >= since
                      and (cid in ln or " WARNING " in ln or " ERROR " in ln or "reachable" in ln)]
            lines.append(f"  {path} since {since}: {len(picked)} line(s) about it or warnings")
            lines += ["    " + ln[:300] for ln in picked[-25:]]
    return "\n".join(lines)


async def agent_on(url: str, username: str = "sarah") -> AgentClient:
    client = AgentClient(url)
    await client.login(username, PASSWORD)
    return client


async def handoff_via_lb(prod: Prod, agent: AgentClient) -> tuple[Visitor, str]:
    visitor = Visitor(prod.lb_url)
    cid = await visitor.connect()
    stream = await agent.stream()
    await visitor.say("I want to talk to a human")
    await visitor.wait_text("connecting you", timeout=40)
    await stream.wait_for(lambda e: e["conversation_id"] == cid and (e.get("conversation") or {}).get("status") == "queued")
    return visitor, cid


async def test_a_visitor_on_one_instance_and_agents_on_both_see_each_other_live(prod: Prod) -> None:
    on_a, on_b = await agent_on(prod.a.gateway_url), await agent_on(prod.b.gateway_url)
    try:
        visitor, cid = await handoff_via_lb(prod, on_a)
        stream_a, stream_b = await on_a.stream(), await on_b.stream()
        await on_b.ok("POST", f"/api/conversations/{cid}/claim")
        await visitor.wait_text("Sarah joined the chat")
        await on_b.ok("POST", f"/api/conversations/{cid}/messages", {"text": "Hello from instance two"})
        await on_a.ok("POST", f"/api/conversations/{cid}/messages", {"text": "And from instance one"})
        await visitor.wait_text("from instance one")
        assert visitor.texts()[-2:] == ["Hello from instance two", "And from instance one"]
        await visitor.say("I see you both")
        for stream in (stream_a, stream_b):
            seen = await stream.wait_for(lambda e: (e.get("message") or {}).get("text") == "I see you both")
            assert seen["message"]["role"] == "visitor"
            assert stream.ids == sorted(stream.ids) and len(stream.ids) == len(set(stream.ids))
        await visitor.close()
    finally:
        await on_a.close()
        await on_b.close()


async def test_fifty_agents_claiming_at_once_over_two_instances_one_wins(prod: Prod) -> None:
    store = SqlConversationStore(prod.db_url)
    names = [f"claimer{i:02d}" for i in range(50)]
    hashed = auth.hash_password(PASSWORD)
    for n in names:
        if await store.get_agent(n) is None:
            await store.create_agent(n, n.title(), hashed)
    await store.close()
    opener = await agent_on(prod.a.gateway_url)
    visitor, cid = await handoff_via_lb(prod, opener)
    agents = [await agent_on(prod.gateway_urls()[i % 2], n) for i, n in enumerate(names)]
    try:
        results = await asyncio.gather(*(a.request("POST", f"/api/conversations/{cid}/claim") for a in agents))
        statuses = sorted(s for s, _ in results)
        assert statuses == [200] + [409] * 49
        winner = next(b for s, b in results if s == 200)["assignee"]
        for status, body in results:
            if status == 409:
                assert body["error"]["code"] == "already_assigned" and body["error"]["detail"]["assignee"] == winner
        timeline = (await opener.conversation(cid))["timeline"]
        assert [t["kind"] for t in timeline].count("claimed") == 1
    finally:
        for a in agents:
            await a.close()
        await opener.close()
        await visitor.close()


async def test_kill_9_of_the_visitors_gateway_loses_and_doubles_nothing(prod: Prod) -> None:
    agent = await agent_on(prod.a.gateway_url)
    visitor, cid = await handoff_via_lb(prod, agent)
    await agent.ok("POST", f"/api/conversations/{cid}/claim")
    await visitor.wait_text("joined the chat")
    await visitor.say("before the crash", message_id="v-1")
    (victim, survivor) = (prod.a, prod.b) if _health(prod.a.gateway_url)["visitor_sockets"] else (prod.b, prod.a)
    assert _health(victim.gateway_url)["visitor_sockets"] >= 1
    await agent.close()
    agent = await agent_on(survivor.gateway_url)
    # `again` below is this widget reconnecting. The first client must not reconnect on its own
    # as well: whichever of the two joins the session's room on the survivor first receives the
    # agent's message, so the test was a race (it failed on f260f77 too, in 1 of 3 runs here).
    visitor.sio.reconnection = False
    victim.stop("gateway", sig=signal.SIGKILL)

    await agent.ok("POST", f"/api/conversations/{cid}/messages", {"text": "Sent while you were reconnecting"})
    again = Visitor(prod.lb_url, session_id=cid)  # the widget reconnects through the load balancer
    assert await again.connect() == cid
    await again.wait_text("while you were reconnecting")
    # The widget retries the message it was not sure about, with the same id: stored once.
    assert (await again.say("before the crash", message_id="v-1"))["ok"]
    await again.say("after the crash", message_id="v-2")
    stream = await agent.stream(last_event_id=0)
    await stream.wait_for(lambda e: (e.get("message") or {}).get("text") == "after the crash")
    detail = await agent.conversation(cid)
    texts = [m["text"] for m in detail["messages"]]
    assert texts.count("before the crash") == 1 and texts.count("after the crash") == 1
    assert texts.count("Sent while you were reconnecting") == 1
    assert again.texts().count("Sent while you were reconnecting") == 1
    victim.start_gateway()
    victim.wait_ready(timeout=60)
    await again.close()
    await visitor.close()
    await agent.close()


async def test_redis_restart_loses_nothing_for_visitors_or_agents(prod: Prod) -> None:
    agent = await agent_on(prod.a.gateway_url)
    visitor, cid = await handoff_via_lb(prod, agent)
    await agent.ok("POST", f"/api/conversations/{cid}/claim")
    await visitor.wait_text("joined the chat")
    other = prod.b.gateway_url if _health(prod.a.gateway_url)["visitor_sockets"] else prod.a.gateway_url
    remote = await agent_on(other)
    stream = await remote.stream()
    _redis_cmd("shutdown", "nosave")
    try:
        await remote.ok("POST", f"/api/conversations/{cid}/messages", {"text": "Sent while Redis was down"})
    finally:
        _start_redis()
    await visitor.wait_text("while Redis was down", timeout=30)
    await visitor.say("got it after the restart")
    await stream.wait_for(lambda e: (e.get("message") or {}).get("text") == "got it after the restart", timeout=30)
    assert visitor.texts().count("Sent while Redis was down") == 1
    await visitor.close()
    await remote.close()
    await agent.close()


async def test_postgres_down_bot_keeps_answering_inbox_says_503_and_all_comes_back(prod: Prod) -> None:
    cluster = _pg_cluster()
    agent = await agent_on(prod.a.gateway_url)
    visitor = Visitor(prod.lb_url)
    cid = await visitor.connect()
    await visitor.say("hello")
    await visitor.wait_for(lambda ms: len(ms) >= 1, timeout=30)
    subprocess.run(["pg_ctlcluster", *cluster, "stop", "-m", "fast"], check=True)
    try:
        n = len(visitor.received)
        ack = await visitor.say("what are your opening hours?")
        assert ack["ok"]
        await visitor.wait_for(lambda ms: len(ms) > n, timeout=30)
        status, body = await agent.request("GET", "/api/conversations?view=all")
        assert status == 503 and body["error"]["code"] == "backend_unavailable" and body["error"]["message"]
    finally:
        subprocess.run(["pg_ctlcluster", *cluster, "start"], check=True)
    deadline = time.time() + 30
    while True:
        status, body = await agent.request("GET", f"/api/conversations/{cid}")
        if status == 200 and any(m["text"] == "what are your opening hours?" for m in body["messages"]):
            break
        assert time.time() < deadline, (status, body)
        await asyncio.sleep(0.2)
    roles = [m["role"] for m in body["messages"]]
    assert roles.count("visitor") == 2 and roles[-1] == "bot"  # the outage's answer is in the record once
    n = len(visitor.received)
    await visitor.say("thanks")
    await visitor.wait_for(lambda ms: len(ms) > n, timeout=30)
    assert len(visitor.received) == n + 1 or all("hours" not in t for t in visitor.texts()[n:])
    await visitor.close()
    await agent.close()


@pytest.mark.timeout(900)  # two Rasa instances reload their model on 2 cores
async def test_rasa_restart_never_gaps_humans_and_answers_bot_visitors_afterwards(prod: Prod) -> None:
    agent = await agent_on(prod.a.gateway_url)
    human_visitor, human_cid = await handoff_via_lb(prod, agent)
    await agent.ok("POST", f"/api/conversations/{human_cid}/claim")
    await human_visitor.wait_text("joined the chat")
    bot_visitor = Visitor(prod.lb_url)
    bot_cid = await bot_visitor.connect()
    await bot_visitor.say("hello")
    await bot_visitor.wait_for(lambda ms: len(ms) >= 1, timeout=30)
    stream = await agent.stream()
    human_before = len(human_visitor.received)

    since = time.strftime("%Y-%m-%d %H:%M:%S")
    prod.a.stop("rasa")
    prod.b.stop("rasa")
    try:
        n_bot = len(bot_visitor.received)
        for q in ("what are your opening hours?", "how long does delivery take?"):
            assert (await bot_visitor.say(q))["ok"]
        for i in range(5):  # the human conversation goes on, both ways, while no Rasa runs
            await human_visitor.say(f"still there {i}?")
            await stream.wait_for(lambda e, i=i: (e.get("message") or {}).get("text") == f"still there {i}?", timeout=5)
            await agent.ok("POST", f"/api/conversations/{human_cid}/messages", {"text": f"yes {i}"})
            await human_visitor.wait_text(f"yes {i}", timeout=5)
        assert len(bot_visitor.received) == n_bot  # nobody answers the bot's visitors yet...
    finally:
        prod.a.start_rasa()
        prod.b.start_rasa()
    # These waits block this test's event loop for the ~40 s Rasa takes to load: the visitors'
    # sockets stop answering pings, as on a stalled network. When the earlier kill -9 test left
    # them on gateway b, they come back through nginx on gateway a while b still sends the bot's
    # answers into the stalled sockets; b finds them dead when their pings time out, and the
    # answers must then reach the new sockets on a (before that fix, this failed 2 runs in 3).
    prod.a.wait_ready(timeout=300)
    prod.b.wait_ready(timeout=300)
    try:
        await bot_visitor.wait_for(lambda ms: len(ms) >= n_bot + 2, timeout=120)  # ...until Rasa is back
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_diagnosis(prod, bot_cid, since)}") from None
    # ...and the bot never spoke to the human's visitor. When the stall outlasted the ping timeout
    # (Rasa took over ~40 s to load), the gateway found the human's socket dead too and, not
    # knowing what it had read, sent the lines since its last pong again to the new socket: a
    # repeat of what the visitor already has is allowed (delivery is at least once), anything
    # new is not.
    human_texts = [m.get("text", "") for m in human_visitor.received[human_before:]]
    assert human_texts[:5] == [f"yes {i}" for i in range(5)]
    already_seen = {m.get("text", "") for m in human_visitor.received[:human_before + 5]}
    assert set(human_texts[5:]) <= already_seen, human_texts
    await human_visitor.close()
    await bot_visitor.close()
    await agent.close()
