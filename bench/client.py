"""The load generator of ``make bench``. Runs in the bench's own venv (``.cache/bench/venv``):
python-socketio 5.18 with aiohttp >= 3.10, so visitors use the websocket transport like a browser
(the Rasa venv's aiohttp 3.9 only allows long-polling).

One process plays every visitor (socket.io, the rasa-webchat protocol) and every agent (inbox
API over HTTP + the SSE stream). It reads the servers' RSS and CPU time from /proc, prints nothing
but progress to stderr, and writes its measurements as JSON.

    python bench/client.py floor   --url URL --pid PID --out F.json [--quick]
    python bench/client.py product --url URL --pid PID --rasa-pid PID --stock-url URL
                                   --tracker-db PATH --password PW --out F.json [--quick]

Every latency is taken with ``time.perf_counter()`` in this process (one clock for both ends),
except the hand-off latency, which starts from a timestamp Rasa wrote (``time.time()`` on the same
machine; see ``handoff`` below)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import aiohttp
import socketio

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

KEY = re.compile(r"#([A-Za-z0-9_-]+)")
BOT_TEXTS = [  # each yields exactly one bot message (template responses, no custom action)
    "hello",
    "what are your opening hours?",
    "how long does delivery take?",
    "what's your returns policy",
    "I forgot my password",
    "when are you open",
    "delivery times",
]
# bench.run --stages: (direction, key, sent, seen) of every forwarded message, wall clock, written
# beside the gateway's stage stamps (bench/stages/) for bench/stages/report.py.
STAGES: Optional[list[tuple[str, str, float, float]]] = [] if os.environ.get("BENCH_STAGES_DIR") else None


def write_stages() -> None:
    if STAGES:
        with open(os.path.join(os.environ["BENCH_STAGES_DIR"], f"client-{os.getpid()}.jsonl"), "a") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in STAGES)
        STAGES.clear()


VISITOR_LINE = "#{key} my parcel is still not here, can you check?"
AGENT_LINE = "#{key} Thanks, I am checking that for you right now."
TIMEOUT = 30.0
RAMP_PARALLEL = 8


def log(msg: str) -> None:
    print(f"   [client {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pc() -> float:
    return time.perf_counter()


# -- numbers --------------------------------------------------------------------------------------
def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def summary(values_ms: list[float]) -> dict[str, Any]:
    v = sorted(values_ms)
    if not v:
        return {"n": 0}
    return {"n": len(v), "p50": round(pct(v, 50), 2), "p95": round(pct(v, 95), 2), "p99": round(pct(v, 99), 2),
            "max": round(v[-1], 2), "mean": round(sum(v) / len(v), 2)}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Series:
    """Samples and failures of one measured stream."""
    samples: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, ms: float) -> None:
        self.samples.append(ms)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def result(self) -> dict[str, Any]:
        return dict(summary(self.samples), errors=dict(self.errors), samples=[round(x, 2) for x in self.samples])


# -- visitors -------------------------------------------------------------------------------------
class Visitor:
    """A rasa-webchat stand-in on the websocket transport."""

    def __init__(self, url: str, session_id: Optional[str] = None, pin: Optional[str] = None) -> None:
        self.url = url
        self.pin = pin  # scale-out: the gateway nginx sends this visitor to (cookie handoff_gateway)
        self.session_id = session_id or "bench-" + uuid.uuid4().hex[:20]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.keyed: dict[str, asyncio.Future[float]] = {}
        self.fragments: list[tuple[str, asyncio.Future[tuple[float, float]]]] = []
        self.next_any: Optional[asyncio.Future[float]] = None
        self.received = 0
        self.dropped = False
        self._confirm: Optional[asyncio.Future[str]] = None
        self.sio.on("bot_uttered", self._on_bot)
        self.sio.on("session_confirm", self._on_confirm)
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_bot(self, data: Any) -> None:
        t = pc()
        wall = time.time()
        self.received += 1
        text = (data or {}).get("text") or "" if isinstance(data, dict) else ""
        if self.next_any is not None and not self.next_any.done():
            self.next_any.set_result(t)
        m = KEY.search(text)
        if m:
            fut = self.keyed.pop(m.group(1), None)
            if fut is not None and not fut.done():
                fut.set_result(t)
        if self.fragments:
            low = text.lower()
            for frag, f in self.fragments:
                if frag in low and not f.done():
                    f.set_result((t, wall))
            self.fragments = [(fr, f) for fr, f in self.fragments if not f.done()]

    async def _on_confirm(self, data: Any) -> None:
        if self._confirm is not None and not self._confirm.done():
            self._confirm.set_result(str(data))

    async def _on_disconnect(self, *args: Any) -> None:
        self.dropped = True

    async def connect(self) -> None:
        self._confirm = asyncio.get_running_loop().create_future()
        headers = {"Cookie": f"handoff_gateway={self.pin}"} if self.pin else {}
        await self.sio.connect(self.url, headers=headers, transports=["websocket"], socketio_path="socket.io",
                               wait_timeout=TIMEOUT)
        await self.sio.emit("session_request", {"session_id": self.session_id})
        await asyncio.wait_for(self._confirm, TIMEOUT)

    def expect_key(self, key: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.keyed[key] = fut
        return fut

    def expect_text(self, fragment: str) -> asyncio.Future[tuple[float, float]]:
        fut: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self.fragments.append((fragment.lower(), fut))
        return fut

    def payload(self, text: str, custom: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        return {"message": text, "session_id": self.session_id, "customData": custom or {"language": "en"}}

    async def close(self) -> None:
        self.dropped = False
        try:
            await self.sio.disconnect()
        except Exception:
            pass


async def connect_all(visitors: list[Visitor], parallel: int = 50) -> int:
    sem = asyncio.Semaphore(parallel)
    failed = 0

    async def one(v: Visitor) -> None:
        nonlocal failed
        async with sem:
            try:
                await v.connect()
            except Exception as exc:
                failed += 1
                log(f"connect failed: {exc!r}")

    await asyncio.gather(*(one(v) for v in visitors))
    return failed


async def close_all(visitors: list[Visitor]) -> None:
    sem = asyncio.Semaphore(100)

    async def one(v: Visitor) -> None:
        async with sem:
            await v.close()

    await asyncio.gather(*(one(v) for v in visitors))


# -- agents ---------------------------------------------------------------------------------------
class Hub:
    """Routes what the agents' SSE streams receive to whoever waits for it."""

    def __init__(self) -> None:
        self.visitor_msgs: dict[str, asyncio.Future[float]] = {}
        self.queued: dict[str, asyncio.Future[tuple[float, float]]] = {}
        self.frames = 0
        self.late = 0

    def expect_visitor_msg(self, key: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.visitor_msgs[key] = fut
        return fut

    def expect_queued(self, cid: str) -> asyncio.Future[tuple[float, float]]:
        fut: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self.queued[cid] = fut
        return fut

    def on_event(self, agent: "Agent", ev: dict[str, Any], t: float, wall: float) -> None:
        self.frames += 1
        kind = ev.get("type")
        if kind == "message_created":
            msg = ev.get("message") or {}
            if msg.get("role") != "visitor":
                return
            m = KEY.match(msg.get("text") or "")
            if not m:
                return
            key = m.group(1)
            if agent.index != int(key.split("-")[1]) % agent.pool:
                return  # measured at the stream of the agent who owns the conversation
            fut = self.visitor_msgs.pop(key, None)
            if fut is None:
                return
            if fut.done():
                self.late += 1
            else:
                fut.set_result(t)
        elif kind == "conversation_updated" and agent.index == 0:
            conv = ev.get("conversation") or {}
            if conv.get("status") == "queued":
                fut = self.queued.pop(ev.get("conversation_id"), None)
                if fut is not None and not fut.done():
                    fut.set_result((t, wall))


class Agent:
    def __init__(self, base: str, username: str, index: int, pool: int, hub: Hub, pin: Optional[str] = None) -> None:
        self.base = base
        self.pin = pin
        self.username = username
        self.index = index
        self.pool = pool
        self.hub = hub
        self.token = ""
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200),
                                          timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        self.task: Optional[asyncio.Task[None]] = None
        self.stream_errors = 0

    @property
    def headers(self) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}"}
        if self.pin:
            h["Cookie"] = f"handoff_gateway={self.pin}"
        return h

    async def login(self, password: str) -> None:
        async with self.http.post(self.base + "/api/login", json={"username": self.username, "password": password},
                                  headers={"Cookie": f"handoff_gateway={self.pin}"} if self.pin else None) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"login of {self.username} failed: {r.status} {body}")
            self.token = body["token"]

    async def post(self, path: str, body: Optional[dict[str, Any]] = None) -> int:
        async with self.http.post(self.base + path, json=body or {}, headers=self.headers) as r:
            await r.read()
            return r.status

    async def stream(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def run() -> None:
            try:
                async with self.http.get(self.base + "/api/events", headers=self.headers,
                                         timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"SSE {resp.status}")
                    ready.set_result(None)
                    async for raw in resp.content:
                        if raw.startswith(b"data: "):
                            t = pc()
                            self.hub.on_event(self, json.loads(raw[6:]), t, time.time())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stream_errors += 1
                log(f"SSE stream of {self.username} ended: {exc!r}")
                if not ready.done():
                    ready.set_exception(exc)

        self.task = asyncio.create_task(run())
        await asyncio.wait_for(ready, TIMEOUT)

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except BaseException:
                pass
        await self.http.close()


# -- workloads -----------------------------------------------------------------------------------
@dataclass
class Pacing:
    """Per conversation: first message at uniform(0, think), then think * uniform(0.5, 1.5)."""
    think: float
    duration: float

    def first(self) -> float:
        return random.uniform(0, self.think)

    def next(self) -> float:
        return self.think * random.uniform(0.5, 1.5)


@dataclass
class Conv:
    index: int
    visitor: Visitor
    agent: Optional[Agent] = None

    @property
    def cid(self) -> str:
        return self.visitor.session_id


class Forwarding:
    """Visitor line -> agent's SSE event, then the agent's reply -> visitor's bot_uttered."""

    _runs = 0

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # Keys are unique over the whole run: agent replies carry them as client_id, which the
        # inbox API deduplicates (a reused key would be "delivered" once only, by design).
        Forwarding._runs += 1
        self.tag = f"r{Forwarding._runs}"
        self.v2a = Series()
        self.a2v = Series()
        self.ack = Series()
        self.rounds = 0
        self.lost_v2a = 0
        self.lost_a2v = 0
        self._late_v: list[asyncio.Future[float]] = []
        self._late_a: list[asyncio.Future[float]] = []

    async def round(self, conv: Conv, n: int) -> None:
        """One exchange. A message counts as *lost* only if its sender was told it was accepted
        (ack ``ok`` / HTTP 201) and it never arrived; a refused or timed-out send is an *error*
        (the sender knows, and the widget or the inbox would send it again)."""
        assert conv.agent is not None
        key = f"c-{conv.index}-{self.tag}n{n}"
        fut = self.hub.expect_visitor_msg(key)
        w0 = time.time()  # wall clock, only for --stages (the gateway's stamps are time.time())
        t0 = pc()
        accepted = False
        try:
            ack = await conv.visitor.sio.call("user_uttered", conv.visitor.payload(VISITOR_LINE.format(key=key)),
                                              timeout=TIMEOUT)
            self.ack.add((pc() - t0) * 1000)
            accepted = isinstance(ack, dict) and bool(ack.get("ok"))
            if not accepted:
                self.v2a.error(f"nack:{(ack or {}).get('error', {}).get('code') if isinstance(ack, dict) else ack}")
        except Exception as exc:
            self.v2a.error(f"ack:{type(exc).__name__}")
        try:
            t1 = await asyncio.wait_for(asyncio.shield(fut), TIMEOUT)
            self.v2a.add((t1 - t0) * 1000)
            if STAGES is not None:
                STAGES.append(("v", key, w0, w0 + (t1 - t0)))
        except asyncio.TimeoutError:
            if accepted:
                self.lost_v2a += 1
                self._late_v.append(fut)
            return
        rkey = f"{key}-r"
        rfut = conv.visitor.expect_key(rkey)
        w2 = time.time()
        t2 = pc()
        try:
            status = await conv.agent.post(f"/api/conversations/{conv.cid}/messages",
                                           {"text": AGENT_LINE.format(key=rkey), "client_id": rkey})
        except Exception as exc:
            status = 0
            self.a2v.error(f"post:{type(exc).__name__}")
        if status != 201:
            if status:
                self.a2v.error(f"http:{status}")
            conv.visitor.keyed.pop(rkey, None)
            return
        try:
            t3 = await asyncio.wait_for(asyncio.shield(rfut), TIMEOUT)
            self.a2v.add((t3 - t2) * 1000)
            if STAGES is not None:
                STAGES.append(("a", rkey, w2, w2 + (t3 - t2)))
        except asyncio.TimeoutError:
            self.lost_a2v += 1
            self._late_a.append(rfut)
        self.rounds += 1

    async def drain(self, limit: float = TIMEOUT) -> None:
        """Give messages that missed the 30 s deadline another ``limit`` seconds: those that arrive
        are late, the others lost."""
        pending = [f for f in self._late_v + self._late_a if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=limit)

    def result(self) -> dict[str, Any]:
        late_v = sum(1 for f in self._late_v if f.done())
        late_a = sum(1 for f in self._late_a if f.done())
        return {"v2a": self.v2a.result(), "a2v": self.a2v.result(), "ack": self.ack.result(), "rounds": self.rounds,
                "timeouts_v2a": self.lost_v2a, "timeouts_a2v": self.lost_a2v,
                "lost_v2a": self.lost_v2a - late_v, "lost_a2v": self.lost_a2v - late_a}


class Echo:
    def __init__(self) -> None:
        self.rtt = Series()
        self.lost = 0

    async def round(self, conv: Conv, n: int) -> None:
        key = f"e-{conv.index}-{n}"
        fut = conv.visitor.expect_key(key)
        t0 = pc()
        try:
            await conv.visitor.sio.emit("user_uttered", conv.visitor.payload(f"#{key} echo", {"bench": "echo"}))
            t1 = await asyncio.wait_for(fut, TIMEOUT)
            self.rtt.add((t1 - t0) * 1000)
        except asyncio.TimeoutError:
            self.lost += 1
        except Exception as exc:
            self.rtt.error(f"emit:{type(exc).__name__}")

    def result(self) -> dict[str, Any]:
        return dict(self.rtt.result(), lost=self.lost)


class BotTurns:
    """Visitor ``user_uttered`` -> first ``bot_uttered`` (fresh conversation every 10 turns, so
    the tracker length is the same for every configuration)."""

    def __init__(self) -> None:
        self.lat = Series()
        self.extra_messages = 0
        self.missing = 0

    async def conversation(self, url: str, turns: int, pacing: Optional[Pacing] = None,
                           until: Optional[float] = None, timeout: float = TIMEOUT, pause: float = 0.0) -> None:
        v = Visitor(url)
        try:
            await v.connect()
        except Exception as exc:
            self.lat.error(f"connect:{type(exc).__name__}")
            return
        expected = 0
        try:
            for i in range(turns):
                if until is not None and pc() >= until:
                    break
                fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                v.next_any = fut
                t0 = pc()
                await v.sio.emit("user_uttered", v.payload(BOT_TEXTS[(i + random.randrange(7)) % 7] if pacing else BOT_TEXTS[i % 7]))
                expected += 1
                try:
                    t1 = await asyncio.wait_for(fut, timeout)
                    self.lat.add((t1 - t0) * 1000)
                except asyncio.TimeoutError:
                    self.missing += 1
                    if timeout < TIMEOUT:
                        break
                if pacing:
                    await asyncio.sleep(pacing.next())
                elif pause:
                    await asyncio.sleep(pause)
            await asyncio.sleep(0.3)
            self.extra_messages += max(0, v.received - expected)
        finally:
            await v.close()

    def result(self) -> dict[str, Any]:
        return dict(self.lat.result(), missing=self.missing, extra_messages=self.extra_messages)


async def paced(convs: list[Conv], pacing: Pacing, work: Callable[[Conv, int], Any]) -> float:
    """Run ``work`` for every conversation at the pacing for ``pacing.duration`` seconds; wait for
    the rounds in flight. Returns the measured wall time."""
    start = pc()
    end = start + pacing.duration

    async def loop(conv: Conv) -> None:
        await asyncio.sleep(pacing.first())
        n = 0
        while pc() < end:
            await work(conv, n)
            n += 1
            await asyncio.sleep(pacing.next())

    await asyncio.gather(*(loop(c) for c in convs))
    return pc() - start


async def warm_up(args: argparse.Namespace, convs: list[Conv], hub: Hub, pacing: Pacing) -> None:
    """The same load, unmeasured, for ``--warmup`` seconds: the gateway holds a claimed
    conversation's lines up to that long before Rasa records them, so a window that started cold
    would measure forwarding without that work."""
    if args.warmup > 0:
        await paced(convs, Pacing(pacing.think, args.warmup), Forwarding(hub).round)


class Probe:
    """CPU seconds of the servers and of this client over a stretch of load."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.t0 = pc()
        self.c0 = {k: cpu_s(p) for k, p in pids.items()}
        self.own0 = own_cpu_s()

    def result(self) -> dict[str, Any]:
        wall = pc() - self.t0
        out: dict[str, Any] = {"wall_s": round(wall, 2)}
        for k, p in self.pids.items():
            try:
                out[f"{k}_cpu_s"] = round(cpu_s(p) - self.c0[k], 2)
                out[f"{k}_rss_mb"] = round(rss_mb(p), 1)
            except OSError:
                pass
        out["client_cpu_s"] = round(own_cpu_s() - self.own0, 2)
        return out


async def settle(pid: Optional[int], what: str, limit: float = 60.0) -> float:
    """Wait until ``pid`` uses < 5 % of a core over 1 s (e.g. Rasa draining the logged human
    stretch), so one level's backlog does not land in the next one."""
    if pid is None:
        return 0.0
    start = pc()
    while pc() - start < limit:
        c0 = cpu_s(pid)
        await asyncio.sleep(1.0)
        if cpu_s(pid) - c0 < 0.05:
            break
    waited = pc() - start
    if waited > 2:
        log(f"{what} was busy for {waited:.0f} s after the load")
    return round(waited, 1)


async def start_profile(pid: int, seconds: float, out_path: str, rate: int = 100) -> Optional[asyncio.subprocess.Process]:
    exe = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(exe):
        return None
    return await asyncio.create_subprocess_exec(
        exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate), "--threads",
        "--nonblocking", "--format", "raw", "-o", out_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


# Frames where a thread waits (py-spy cannot tell idle threads apart on this kernel, so its
# samples include waiting): the store's worker waiting for a job, and the event loop in uvloop's
# C code (waiting in epoll, or doing socket I/O that Python frames do not show).
WAITING = ("_worker (concurrent/futures/thread.py:81)", "serve (sanic/server/runners.py:155)")


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FRAME = re.compile(r"^(?P<fn>[^ ]+) \((?P<file>handoff_channel/[^:]+):(?P<line>\d+)\)$")
_defs: dict[str, list[tuple[int, int, str]]] = {}


def qualified(frame: str) -> str:
    """``run (handoff_channel/store/sql.py:539)`` -> ``SqlConversationStore.pending_outbox.run
    (store/sql.py)``: nested closures are all called ``run``, the enclosing method says which
    use case it is. Resolved right after the run, against the files that ran."""
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    if path not in _defs:
        import ast

        spans: list[tuple[int, int, str]] = []
        try:
            with open(os.path.join(REPO, path)) as fh:
                tree = ast.parse(fh.read())
        except (OSError, SyntaxError):
            tree = None

        def walk(node: Any, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = f"{prefix}{child.name}"
                    spans.append((child.lineno, child.end_lineno or child.lineno, name))
                    walk(child, name + ".")
                else:
                    walk(child, prefix)

        if tree is not None:
            walk(tree, "")
        _defs[path] = spans
    line = int(m.group("line"))
    inside = [s for s in _defs[path] if s[0] <= line <= s[1]]
    name = max(inside, key=lambda s: s[0])[2] if inside else m.group("fn")
    return f"{name} ({path.removeprefix('handoff_channel/')})"


def read_profile(path: str, seconds: float, rate: int = 100) -> dict[str, Any]:
    """Where the sampled process spent its time: per thread the share of samples outside the
    waiting frames, and the innermost frames of our own code (handoff_channel) and of any code."""
    threads: dict[str, int] = {}
    ours: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            count = int(n)
            frames = stack.split(";")
            thread = re.sub(r"^thread \(0x[0-9A-Fa-f]+\): ", "", frames[0])
            if frames[-1] in WAITING:
                thread += " (waiting)"
            threads[thread] = threads.get(thread, 0) + count
            total += count
            own = [fr for fr in frames if "handoff_channel/" in fr]
            key = f"{thread} | {qualified(own[-1]) if own else '(no handoff_channel frame)'}"
            ours[key] = ours.get(key, 0) + count
            leaves[f"{thread} | {frames[-1]}"] = leaves.get(f"{thread} | {frames[-1]}", 0) + count
    possible = seconds * rate

    def top(d: dict[str, int], k: int) -> list[tuple[str, float]]:
        return [(name, round(100 * c / possible, 1)) for name, c in sorted(d.items(), key=lambda x: -x[1])[:k]]

    return {"seconds": seconds, "rate": rate, "samples": total,
            "threads_pct_of_time": top(threads, 8), "own_frames_pct": top(ours, 14), "leaf_frames_pct": top(leaves, 14)}


def plan(quick: bool, levels: str = "") -> dict[str, Any]:
    p = _plan(quick)
    if levels:
        p["levels"] = [int(x) for x in levels.split(",")]
        for n in p["levels"]:
            p["durations"].setdefault(n, 20)
            p["thinks"].setdefault(n, 10.0)
    return p


def _plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {"levels": [1, 10], "agents": 2, "durations": {1: 3, 10: 4}, "thinks": {1: 0.1, 10: 0.5},
                "bot_reps": 3, "bot_pause": 0.2, "handoff_idle": 5, "mixed": {"bot": 15, "human": 5, "think": 2.0, "duration": 6},
                "idle_conns": 50, "profile_level": 10, "profile_s": 4}
    return {"levels": [1, 10, 100, 500, 1000], "agents": 10,
            "durations": {1: 10, 10: 12, 100: 25, 500: 60, 1000: 20},
            "thinks": {1: 0.05, 10: 0.5, 100: 10.0, 500: 10.0, 1000: 10.0},
            "bot_reps": 20, "bot_pause": 0.5, "handoff_idle": 30, "mixed": {"bot": 150, "human": 50, "think": 10.0, "duration": 60},
            "idle_conns": 1000, "profile_level": 500, "profile_s": 12}


# -- the floor --------------------------------------------------------------------------------------
async def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    p = plan(args.quick, args.levels)
    parts = set(args.parts.split(",")) if args.parts else {"memory", "levels", "mixed"}
    out: dict[str, Any] = {"plan": p, "levels": {}, "memory": {}}
    hub = Hub()
    agents = [Agent(args.url, f"floor{i}", i, p["agents"], hub) for i in range(p["agents"])]
    for a in agents:
        await a.login("x")
        await a.stream()
    pids = {"server": args.pid}

    # Memory per idle connection.
    await asyncio.sleep(0.5)
    r0 = rss_mb(args.pid)
    if "memory" in parts:
        idle = [Visitor(args.url) for _ in range(p["idle_conns"])]
        failed = await connect_all(idle)
        await asyncio.sleep(1.0)
        r1 = rss_mb(args.pid)
        out["memory"] = {"rss_before_mb": round(r0, 1), "rss_idle_mb": round(r1, 1), "idle_connections": len(idle),
                         "connect_failures": failed, "kb_per_idle_connection": round((r1 - r0) * 1024 / len(idle), 1)}
        await close_all(idle)
        log(f"floor: {out['memory']['kb_per_idle_connection']} KB per idle connection")

    visitors: list[Visitor] = []
    for n in (p["levels"] if "levels" in parts else []):
        while len(visitors) < n:
            visitors.append(Visitor(args.url))
        await connect_all([v for v in visitors if not v.sio.connected])
        convs = [Conv(i, v, agents[i % len(agents)]) for i, v in enumerate(visitors)]
        pacing = Pacing(p["thinks"][n], p["durations"][n])
        level: dict[str, Any] = {"think_s": pacing.think, "duration_s": pacing.duration}
        echo = Echo()
        probe = Probe(pids)
        await paced(convs, pacing, echo.round)
        level["echo"] = dict(echo.result(), **probe.result())
        fwd = Forwarding(hub)
        probe = Probe(pids)
        await paced(convs, pacing, fwd.round)
        await fwd.drain()
        level["relay"] = dict(fwd.result(), **probe.result())
        # The same relay again, each line committed to SQLite before it is passed on.
        if await agents[0].post("/bench/durable", {"on": True}) == 200:
            fwd = Forwarding(hub)
            probe = Probe(pids)
            await paced(convs, pacing, fwd.round)
            await fwd.drain()
            level["relay_durable"] = dict(fwd.result(), **probe.result())
            await agents[0].post("/bench/durable", {"on": False})
        level["loadavg"] = os.getloadavg()
        out["levels"][str(n)] = level
        durable = level.get("relay_durable", {})
        log(f"floor N={n}: echo p50/p99 {level['echo'].get('p50')}/{level['echo'].get('p99')} ms, relay v2a p99 "
            f"{level['relay']['v2a'].get('p99')} a2v p99 {level['relay']['a2v'].get('p99')} ms, durable relay v2a p99 "
            f"{durable.get('v2a', {}).get('p99')} a2v p99 {durable.get('a2v', {}).get('p99')} ms")
    await close_all(visitors)

    # The floor's shape of the mixed load: 150 echo visitors next to 50 relayed conversations.
    if "mixed" in parts:
        m = p["mixed"]
        bots = [Visitor(args.url) for _ in range(m["bot"])]
        humans = [Visitor(args.url) for _ in range(m["human"])]
        await connect_all(bots + humans)
        pacing = Pacing(m["think"], m["duration"])
        echo, fwd = Echo(), Forwarding(hub)
        probe = Probe(pids)
        await asyncio.gather(
            paced([Conv(i, v) for i, v in enumerate(bots)], pacing, echo.round),
            paced([Conv(i, v, agents[i % len(agents)]) for i, v in enumerate(humans)], pacing, fwd.round),
        )
        await fwd.drain()
        out["mixed"] = {"echo": echo.result(), "relay": fwd.result(), **probe.result(), "loadavg": os.getloadavg()}
        log(f"floor mixed: echo p99 {out['mixed']['echo'].get('p99')} ms, relay v2a p99 "
            f"{out['mixed']['relay']['v2a'].get('p99')}")
        await close_all(bots + humans)
    for a in agents:
        await a.close()
    return out


# -- the product ----------------------------------------------------------------------------------
def pause_timestamps(db: str, cids: list[str]) -> dict[str, float]:
    """When Rasa applied the events action_handoff returned: the ``pause`` event's timestamp,
    which Rasa sets with time.time() as it logs the action's events, right after the action
    server answered (``MessageProcessor._log_action_on_tracker``)."""
    if not db or not os.path.exists(db):
        return {}
    out: dict[str, float] = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
        for i in range(0, len(cids), 500):
            chunk = cids[i:i + 500]
            q = f"SELECT sender_id, MAX(timestamp) FROM events WHERE type_name = 'pause' AND sender_id IN ({','.join('?' * len(chunk))}) GROUP BY sender_id"
            for sender, ts in con.execute(q, chunk):
                out[sender] = float(ts)
    return out


async def bot_turns_ab(args: argparse.Namespace, p: dict[str, Any]) -> dict[str, Any]:
    # The visitor reads the answer before the next line (bot_pause): each turn starts on an idle
    # conversation, as a person's do. Back to back (the next line the moment the first answer
    # arrives) is measured too: that turn also waits for the previous one to finish in Rasa
    # (next-action prediction, tracker save) and, through our channel, for the gateway's record
    # of it.
    ours, stock = BotTurns(), BotTurns()
    ours_b2b, stock_b2b = BotTurns(), BotTurns()
    pause = p["bot_pause"]
    # Warm both (first turns load lazily-built parts of the model) and leave it out.
    for name, url in (("our gateway", args.url), ("the stock channel", args.stock_url)):
        warm = BotTurns()
        await warm.conversation(url, 3, timeout=20)
        if warm.missing or warm.lat.errors:
            raise RuntimeError(f"{name} did not answer bot turns ({warm.result()['errors']}, {warm.missing} missing)")
    for rep in range(p["bot_reps"]):
        order = [(ours, ours_b2b, args.url), (stock, stock_b2b, args.stock_url)]
        if rep % 2:
            order.reverse()
        for paced, _b2b, url in order:
            await paced.conversation(url, 10, pause=pause)
        for _paced, b2b, url in order:
            await b2b.conversation(url, 10)
    res = {"ours": ours.result(), "stock": stock.result(), "pause_s": pause,
           "back_to_back": {"ours": ours_b2b.result(), "stock": stock_b2b.result()}}
    log(f"bot turns ({pause} s between lines): ours p50 {res['ours'].get('p50')} ms, stock p50 "
        f"{res['stock'].get('p50')} ms; back to back: ours p50 {res['back_to_back']['ours'].get('p50')} ms, "
        f"stock p50 {res['back_to_back']['stock'].get('p50')} ms")
    return res


async def into_handoff(args: argparse.Namespace, convs: list[Conv], agents: list[Agent], hub: Hub,
                       parallel: int) -> dict[str, Any]:
    """Each visitor asks for a person; the conversation's agent claims it."""
    sem = asyncio.Semaphore(parallel)
    visitor_seen: dict[str, float] = {}
    sse_seen: dict[str, tuple[float, float]] = {}
    emit_to_sse: list[float] = []
    errors: dict[str, int] = {}

    def err(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def one(conv: Conv) -> None:
        async with sem:
            v = conv.visitor
            if not v.sio.connected:
                try:
                    await v.connect()
                except Exception as exc:
                    err(f"connect:{type(exc).__name__}")
                    return
            q = hub.expect_queued(conv.cid)
            c = v.expect_text("connecting you")
            t0 = pc()
            await v.sio.emit("user_uttered", v.payload("I want to talk to a human"))
            try:
                (tc, _), (tq, wq) = await asyncio.wait_for(asyncio.gather(c, q), 60)
            except asyncio.TimeoutError:
                err("handoff_timeout")
                return
            visitor_seen[conv.cid] = tc
            sse_seen[conv.cid] = (tq, wq)
            emit_to_sse.append((tq - t0) * 1000)
            assert conv.agent is not None
            j = v.expect_text("joined the chat")
            status = await conv.agent.post(f"/api/conversations/{conv.cid}/claim")
            if status != 200:
                err(f"claim:{status}")
                return
            try:
                await asyncio.wait_for(j, 60)
            except asyncio.TimeoutError:
                err("joined_timeout")

    await asyncio.gather(*(one(c) for c in convs))
    pauses = pause_timestamps(args.tracker_db, [c.cid for c in convs])
    return {
        "action_end_to_sse": [(sse_seen[cid][1] - ts) * 1000 for cid, ts in pauses.items() if cid in sse_seen],
        "visitor_connecting_to_sse": [(sse_seen[cid][0] - visitor_seen[cid]) * 1000 for cid in sse_seen if cid in visitor_seen],
        "visitor_emit_to_sse": emit_to_sse,
        "conversations": [len(convs)], "pause_timestamps_found": [len(pauses)],
        "errors": errors,
    }


def add_raw(acc: dict[str, Any], res: dict[str, Any]) -> None:
    for k, v in res.items():
        if k == "errors":
            for e, n in v.items():
                acc.setdefault("errors", {})[e] = acc.get("errors", {}).get(e, 0) + n
        else:
            acc.setdefault(k, []).extend(v)


def summarise_raw(acc: dict[str, Any], parallel: int) -> dict[str, Any]:
    out: dict[str, Any] = {"parallel": parallel, "errors": acc.get("errors", {})}
    for k in ("action_end_to_sse", "visitor_connecting_to_sse", "visitor_emit_to_sse"):
        out[k] = summary(acc.get(k, []))
    out["conversations"] = sum(acc.get("conversations", []))
    out["pause_timestamps_found"] = sum(acc.get("pause_timestamps_found", []))
    return out


async def profiled_rerun(args: argparse.Namespace, convs: list[Conv], hub: Hub, pacing: Pacing,
                         n: int) -> dict[str, Any]:
    """The same load again, with py-spy sampling the gateway (kept out of the measured run)."""
    path = os.path.join(os.path.dirname(os.path.abspath(args.out)), f"gateway-profile-{n}.txt")
    proc = await start_profile(args.pid, pacing.duration, path)
    if proc is None:
        return {"skipped": "py-spy is not installed in the bench venv"}
    fwd = Forwarding(hub)
    probe = Probe({"gateway": args.pid, "rasa": args.rasa_pid})
    await paced(convs, pacing, fwd.round)
    usage = probe.result()
    _, err = await proc.communicate()
    await settle(args.rasa_pid, "rasa", limit=120)
    if proc.returncode != 0 or not os.path.exists(path):
        return {"skipped": f"py-spy failed: {err.decode(errors='replace')[-300:]}"}
    res = read_profile(path, pacing.duration)
    res["cpu_pct_of_core"] = {k: round(100 * usage.get(f"{k}_cpu_s", 0) / usage["wall_s"], 1)
                              for k in ("gateway", "rasa")}
    res.update(level=n, raw=os.path.relpath(path), v2a=summary(fwd.v2a.samples), a2v=summary(fwd.a2v.samples),
               rounds=fwd.rounds)
    log(f"profile of the gateway at N={n}: CPU {res['cpu_pct_of_core']}, samples {res['threads_pct_of_time']}")
    return res


PARTS = ("bot", "memory", "levels", "profile", "mixed")


def pins(args: argparse.Namespace) -> list[str]:
    """Scale-out: the gateways (nginx's ``handoff_gateway`` cookie values) to spread clients over."""
    return [p for p in (args.pin or "").split(",") if p]


async def run_product(args: argparse.Namespace) -> dict[str, Any]:
    p = plan(args.quick, args.levels)
    parts = set(args.parts.split(",")) if args.parts else set(PARTS)
    out: dict[str, Any] = {"plan": p, "parts": sorted(parts), "levels": {}, "handoff": {}}
    pids = {"gateway": args.pid, "rasa": args.rasa_pid}
    if args.pid2:
        pids["gateway2"] = args.pid2
    gw = pins(args)

    # 1. Bot turns, ours vs stock, same model, interleaved.
    if "bot" in parts:
        out["bot_turns"] = await bot_turns_ab(args, p)

    # 2. Memory per idle visitor connection.
    await settle(args.rasa_pid, "rasa")
    r0 = rss_mb(args.pid)
    out["memory"] = {"rss_before_mb": round(r0, 1)}
    if "memory" in parts:
        idle = [Visitor(args.url) for _ in range(p["idle_conns"])]
        failed = await connect_all(idle)
        await asyncio.sleep(1.0)
        r1 = rss_mb(args.pid)
        out["memory"].update(rss_idle_mb=round(r1, 1), idle_connections=len(idle), connect_failures=failed,
                             kb_per_idle_connection=round((r1 - r0) * 1024 / len(idle), 1))
        await close_all(idle)
        log(f"gateway: {out['memory']['kb_per_idle_connection']} KB per idle connection")

    # 3. Agents: all stream every event (the inbox shows every conversation). Scale-out: agent i
    # is on gateway i % 2, visitor j on gateway (j // agents) % 2, so half the conversations have
    # their visitor and their agent on different instances (the Redis bus carries their events).
    hub = Hub()
    agents = [Agent(args.url, f"bench{i}", i, p["agents"], hub, gw[i % len(gw)] if gw else None)
              for i in range(p["agents"])]
    for a in agents:
        await a.login(args.password)
        await a.stream()

    def visitor(i: int) -> Visitor:
        return Visitor(args.url, pin=gw[(i // len(agents)) % len(gw)] if gw else None)

    # 4. Levels: bring conversations into handoff (the first ones one at a time, for the hand-off
    # latency at rest), then forward at the level's pacing.
    convs: list[Conv] = []
    handoff_idle: dict[str, Any] = {}
    handoff_ramp: dict[str, Any] = {}

    async def grow(n: int) -> None:
        new = [Conv(i, visitor(i), agents[i % len(agents)]) for i in range(len(convs), n)]
        await settle(args.rasa_pid, "rasa")
        t = pc()
        idle_part = [c for c in new if c.index < p["handoff_idle"]]
        rest = [c for c in new if c.index >= p["handoff_idle"]]
        if idle_part:
            add_raw(handoff_idle, await into_handoff(args, idle_part, agents, hub, parallel=1))
        if rest:
            add_raw(handoff_ramp, await into_handoff(args, rest, agents, hub, parallel=RAMP_PARALLEL))
        convs.extend(new)
        log(f"{n} conversations in handoff ({pc() - t:.0f} s to add {len(new)})")

    for n in (p["levels"] if "levels" in parts else []):
        await grow(n)
        settled = await settle(args.rasa_pid, "rasa")
        pacing = Pacing(p["thinks"][n], p["durations"][n])
        await warm_up(args, convs, hub, pacing)
        fwd = Forwarding(hub)
        probe = Probe(pids)
        await paced(convs, pacing, fwd.round)
        level_probe = probe.result()
        await fwd.drain()
        level = dict(fwd.result(), **level_probe, think_s=pacing.think, duration_s=pacing.duration, warmup_s=args.warmup,
                     settle_before_s=settled, dropped_visitors=sum(1 for c in convs if c.visitor.dropped),
                     sse_stream_errors=sum(a.stream_errors for a in agents), loadavg=os.getloadavg())
        level["rasa_busy_after_s"] = await settle(args.rasa_pid, "rasa", limit=120)
        level["rss_after_mb"] = round(rss_mb(args.pid), 1)
        out["levels"][str(n)] = level
        if n == p["profile_level"] and "profile" in parts:
            out["profile"] = await profiled_rerun(args, convs, hub, Pacing(p["thinks"][n], p["profile_s"]), n)
        log(f"N={n}: v2a p50/p99 {level['v2a'].get('p50')}/{level['v2a'].get('p99')} ms, a2v p50/p99 "
            f"{level['a2v'].get('p50')}/{level['a2v'].get('p99')} ms, lost {level['lost_v2a']}+{level['lost_a2v']}, "
            f"errors {level['v2a']['errors']} {level['a2v']['errors']}, load {os.getloadavg()[0]:.2f}")
    if "mixed" in parts and len(convs) < p["mixed"]["human"]:
        await grow(p["mixed"]["human"])
    out["handoff"] = {"idle": summarise_raw(handoff_idle, 1), "ramp": summarise_raw(handoff_ramp, RAMP_PARALLEL)}
    log(f"hand-off, action end -> SSE: {out['handoff']['idle']['action_end_to_sse']}")
    n_max = len(convs)
    out["memory"].update(
        handoff_conversations=n_max, rss_handoff_mb=round(rss_mb(args.pid), 1),
        kb_per_handoff_conversation=round((rss_mb(args.pid) - r0) * 1024 / max(1, n_max), 1),
    )
    if "mixed" not in parts:
        await close_all([c.visitor for c in convs])
        for a in agents:
            await a.close()
        out["sse_frames_received"] = hub.frames
        return out

    # 5. Mixed: 150 bot-owned visitors (10 s think) next to 50 human-owned conversations.
    m = p["mixed"]
    humans = convs[: m["human"]]
    await close_all([c.visitor for c in convs[m["human"]:]])
    await settle(args.rasa_pid, "rasa")
    pacing = Pacing(m["think"], m["duration"])
    await warm_up(args, humans, hub, pacing)
    bots = BotTurns()
    fwd = Forwarding(hub)
    until = pc() + m["duration"]

    async def bot_visitor() -> None:
        await asyncio.sleep(pacing.first())
        while pc() < until:
            await bots.conversation(args.url, 10, pacing, until)

    probe = Probe(pids)
    await asyncio.gather(paced(humans, pacing, fwd.round), *(bot_visitor() for _ in range(m["bot"])))
    mixed_probe = probe.result()
    await fwd.drain()
    out["mixed"] = {"forwarding": fwd.result(), "bot_turns": bots.result(), **mixed_probe, "loadavg": os.getloadavg(),
                    "warmup_s": args.warmup}
    log(f"mixed: v2a p99 {out['mixed']['forwarding']['v2a'].get('p99')} ms, a2v p99 "
        f"{out['mixed']['forwarding']['a2v'].get('p99')} ms, bot p50/p99 {out['mixed']['bot_turns'].get('p50')}/"
        f"{out['mixed']['bot_turns'].get('p99')} ms")
    await close_all([c.visitor for c in humans])
    for a in agents:
        await a.close()
    out["sse_frames_received"] = hub.frames
    return out


async def amain(args: argparse.Namespace) -> None:
    random.seed(7)
    result = await (run_floor(args) if args.mode == "floor" else run_product(args))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["floor", "product"])
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--rasa-pid", type=int)
    ap.add_argument("--stock-url")
    ap.add_argument("--tracker-db", default="")
    ap.add_argument("--password", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--warmup", type=float, default=0.0,
                    help="unmeasured load before each forwarding measurement (the claimed record batch)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="", help=f"product: comma-separated subset of {','.join(PARTS)}; "
                    "floor: levels and/or mixed (default: all)")
    ap.add_argument("--levels", default="", help="comma-separated N to run instead of the plan's levels")
    ap.add_argument("--pid2", type=int, help="scale-out: the second gateway's pid (CPU in the results)")
    ap.add_argument("--pin", default="", help="scale-out: comma-separated handoff_gateway cookie values")
    args = ap.parse_args()
    if uvloop is not None:
        uvloop.install()
    try:
        asyncio.run(amain(args))
    finally:
        write_stages()


if __name__ == "__main__":
    main()
