"""The floor: the smallest server on the gateway's own stack (Sanic 21.12 + python-socketio 5,
``async_mode="sanic"``, same ping settings) that speaks the same protocol as the gateway, so the
same client harness runs against both. Nothing is authenticated, and nothing stored but the durable
relay's lines.

* ``user_uttered`` is acknowledged at once. With ``customData.bench == "echo"`` it is echoed back
  to the sender as ``bot_uttered`` (the *echo* floor); otherwise it is pushed to every SSE stream
  as a ``message_created`` event (the *relay* floor, the gateway's visitor -> agent path).
* ``POST /api/conversations/<id>/messages`` emits ``bot_uttered`` to the conversation's room (the
  agent -> visitor path); ``/api/login``, ``/claim`` and ``/api/events`` (SSE) exist so the agent
  side of the harness works unchanged.
* ``POST /bench/durable {"on": true}`` turns on the *durable relay*: each relayed line is first
  written to SQLite and committed (one row, WAL, ``synchronous=NORMAL``: the gateway's settings),
  as the least a server that never loses an accepted line must do. ``{"on": false}`` turns it off.

Run with the project venv: ``.venv/bin/python bench/floor_server.py PORT [DB_PATH]``."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import sys
import time
from typing import Any, Optional

import socketio
from sanic import Sanic, response
from sanic.request import Request

app = Sanic("bench_floor")
app.config.RESPONSE_TIMEOUT = 3600
app.config.KEEP_ALIVE_TIMEOUT = 75
sio = socketio.AsyncServer(async_mode="sanic", cors_allowed_origins="*", ping_interval=20, ping_timeout=20)
sio.attach(app, socketio_path="socket.io")

class Stream:
    """One SSE client's frames not yet written. A waiting writer is woken directly by a publish, and
    what piled up meanwhile leaves in one write: the gateway's own technique (its memory bus), so
    the relay is not slower than the product for want of it."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.waiter: Optional[asyncio.Future[None]] = None

    def push(self, frame: str) -> None:
        self.frames.append(frame)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self, timeout: float) -> str:
        """What is queued, or a keep-alive comment after ``timeout`` s of nothing."""
        if not self.frames:
            loop = asyncio.get_running_loop()
            self.waiter = loop.create_future()
            timer = loop.call_later(timeout, lambda w=self.waiter: w.done() or w.set_result(None))
            try:
                await self.waiter
            finally:
                self.waiter = None
                timer.cancel()
            if not self.frames:
                return ": keep-alive\n\n"
        out = "".join(self.frames)
        self.frames.clear()
        return out


streams: set[Stream] = set()
ids = itertools.count(1)
session_of: dict[str, str] = {}
db_path = sys.argv[2] if len(sys.argv) > 2 else ":memory:"
db: Optional[sqlite3.Connection] = None


def store_line(cid: str, role: str, text: Any) -> int:
    """With the durable relay on, commit the line before it goes anywhere; its row id (else 0)."""
    if db is None:
        return 0
    cur = db.execute("INSERT INTO lines (conversation_id, role, text, created_at) VALUES (?, ?, ?, ?)",
                     (cid, role, str(text), time.time()))
    db.commit()
    return cur.lastrowid or 0


def publish(cid: str, message: dict[str, Any]) -> None:
    n = next(ids)
    data = {"id": n, "type": "message_created", "conversation_id": cid, "message": message,
            "conversation": None, "timeline": None, "created_at": time.time()}
    frame = f"id: {n}\nevent: message_created\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
    for stream in list(streams):
        stream.push(frame)


@sio.on("session_request")
async def session_request(sid: str, data: Any) -> None:
    session_id = (data or {}).get("session_id") or sid
    session_of[sid] = session_id
    await sio.enter_room(sid, session_id)
    await sio.emit("session_confirm", session_id, room=sid)


@sio.on("disconnect")
async def disconnect(sid: str) -> None:
    session_of.pop(sid, None)


@sio.on("user_uttered")
async def user_uttered(sid: str, data: Any) -> dict[str, Any]:
    text = data.get("message")
    custom = data.get("customData") or {}
    if custom.get("bench") == "echo":
        await sio.emit("bot_uttered", {"text": text}, room=sid)
    else:
        cid = session_of.get(sid, sid)
        n = store_line(cid, "visitor", text)
        publish(cid, {"role": "visitor", "text": text, "conversation_id": cid})
        return {"ok": True, "id": n, "seq": 0}
    return {"ok": True, "id": 0, "seq": 0}


@app.route("/healthz", methods=["GET"])
async def healthz(request: Request) -> Any:
    return response.json({"status": "ok"})


@app.route("/api/login", methods=["POST"])
async def login(request: Request) -> Any:
    return response.json({"token": "floor", "agent": {"username": request.json.get("username")}})


@app.route("/api/conversations/<cid>/claim", methods=["POST"])
async def claim(request: Request, cid: str) -> Any:
    return response.json({"id": cid, "status": "assigned"})


@app.route("/api/conversations/<cid>/messages", methods=["POST"])
async def reply(request: Request, cid: str) -> Any:
    text = request.json.get("text")
    store_line(cid, "agent", text)
    await sio.emit("bot_uttered", {"text": text}, room=cid)
    return response.json({"conversation_id": cid, "text": text, "role": "agent"}, status=201)


@app.route("/bench/durable", methods=["POST"])
async def durable(request: Request) -> Any:
    global db
    if (request.json or {}).get("on"):
        if db is None:
            db = sqlite3.connect(db_path, isolation_level="DEFERRED")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS lines (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, "
                       "role TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL)")
            db.commit()
    elif db is not None:
        db.close()
        db = None
    return response.json({"durable": db is not None})


@app.route("/api/events", methods=["GET"])
async def events(request: Request) -> None:
    stream = Stream()
    streams.add(stream)
    resp = await request.respond(content_type="text/event-stream; charset=utf-8",
                                 headers={"Cache-Control": "no-cache"})
    try:
        await resp.send(": connected\nretry: 2000\n\n")
        while True:
            await resp.send(await stream.next(15))
    except (asyncio.CancelledError, ConnectionError, OSError):
        pass
    finally:
        streams.discard(stream)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), access_log=False, workers=1, motd=False)
