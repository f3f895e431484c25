"""The floor: the smallest server on the gateway's own stack (Sanic 21.12 + python-socketio 5,
``async_mode="sanic"``, same ping settings) that speaks the same protocol as the gateway, so the
same client harness runs against both. Nothing is stored, nothing is authenticated.

* ``user_uttered`` is acknowledged at once. With ``customData.bench == "echo"`` it is echoed back
  to the sender as ``bot_uttered`` (the *echo* floor); otherwise it is pushed to every SSE stream
  as a ``message_created`` event (the *relay* floor, the gateway's visitor -> agent path).
* ``POST /api/conversations/<id>/messages`` emits ``bot_uttered`` to the conversation's room (the
  agent -> visitor path); ``/api/login``, ``/claim`` and ``/api/events`` (SSE) exist so the agent
  side of the harness works unchanged.

Run with the project venv: ``.venv/bin/python bench/floor_server.py PORT``."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from typing import Any

import socketio
from sanic import Sanic, response
from sanic.request import Request

app = Sanic("bench_floor")
app.config.RESPONSE_TIMEOUT = 3600
app.config.KEEP_ALIVE_TIMEOUT = 75
sio = socketio.AsyncServer(async_mode="sanic", cors_allowed_origins="*", ping_interval=20, ping_timeout=20)
sio.attach(app, socketio_path="socket.io")

streams: set[asyncio.Queue[str]] = set()
ids = itertools.count(1)
session_of: dict[str, str] = {}


def publish(cid: str, message: dict[str, Any]) -> None:
    n = next(ids)
    data = {"id": n, "type": "message_created", "conversation_id": cid, "message": message,
            "conversation": None, "timeline": None, "created_at": time.time()}
    frame = f"id: {n}\nevent: message_created\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
    for q in list(streams):
        q.put_nowait(frame)


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
        publish(cid, {"role": "visitor", "text": text, "conversation_id": cid})
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
    await sio.emit("bot_uttered", {"text": text}, room=cid)
    return response.json({"conversation_id": cid, "text": text, "role": "agent"}, status=201)


@app.route("/api/events", methods=["GET"])
async def events(request: Request) -> None:
    q: asyncio.Queue[str] = asyncio.Queue()
    streams.add(q)
    resp = await request.respond(content_type="text/event-stream; charset=utf-8",
                                 headers={"Cache-Control": "no-cache"})
    try:
        await resp.send(": connected\nretry: 2000\n\n")
        while True:
            try:
                frame = await asyncio.wait_for(q.get(), 15)
            except asyncio.TimeoutError:
                frame = ": keep-alive\n\n"
            await resp.send(frame)
    except (asyncio.CancelledError, ConnectionError, OSError):
        pass
    finally:
        streams.discard(q)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), access_log=False, workers=1, motd=False)
