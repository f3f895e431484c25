"""Clients a test uses to act as a visitor (socket.io, the rasa-webchat protocol) and as an agent
(the inbox API over HTTP, and its SSE stream). They wait on events with timeouts; never sleep."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import aiohttp
import socketio
import socketio.exceptions
import socketio.packet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` now."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Visitor:
    """A widget stand-in: same events and payloads as rasa-webchat 1.0.1."""

    open_visitors: "set[Visitor]" = set()  # closed by a fixture after each test, even a failed one

    def __init__(self, url: str, session_id: Optional[str] = None) -> None:
        self.url = url
        self.session_id = session_id
        # The websocket transport of the python-socketio client needs aiohttp>=3.10, which Rasa's
        # pins forbid in this venv; long-polling speaks the same protocol.
        # Reconnects like rasa-webchat does (socket.io-client), asking for the same session again.
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
        self.received: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._confirm: Optional[asyncio.Future[str]] = None
        self.sio.on("bot_uttered", self._on_bot)
        self.sio.on("session_confirm", self._on_confirm)
        self.sio.on("connect", self._on_connect)
        self.reconnects = 0

    async def _on_bot(self, data: dict[str, Any]) -> None:
        self.received.append(data)
        self._changed.set()

    async def _on_connect(self) -> None:
        if self._confirm is not None and self._confirm.done():  # a reconnect, not the first connect
            self.reconnects += 1
            await self.sio.emit("session_request", {"session_id": self.session_id})

    async def _on_confirm(self, data: str) -> None:
        if self._confirm and not self._confirm.done():
            self._confirm.set_result(data)

    async def connect(self) -> str:
        self._confirm = asyncio.get_running_loop().create_future()
        Visitor.open_visitors.add(self)
        await self.sio.connect(self.url, transports=["polling"], socketio_path="socket.io")
        await self.sio.emit("session_request", {"session_id": self.session_id})
        self.session_id = await asyncio.wait_for(self._confirm, 10)
        return self.session_id

    async def say(self, text: str, *, message_id: Optional[str] = None, custom: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Send a turn and wait for the server's acknowledgement. Like a careful client, it keeps
        one message id and resends after a reconnect when no acknowledgement came: the gateway
        stores a message id once."""
        data: dict[str, Any] = {"message": text, "session_id": self.session_id, "customData": custom or {"language": "en"},
                                "message_id": message_id or new_id()}
        for attempt in range(3):
            try:
                return await self.sio.call("user_uttered", data, timeout=10)
            except socketio.exceptions.TimeoutError:
                if attempt == 2:
                    raise
                deadline = asyncio.get_running_loop().time() + 15
                while not self.sio.connected and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.1)
        raise AssertionError("unreachable")

    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.received]

    async def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0) -> list[dict[str, Any]]:
        async def loop() -> list[dict[str, Any]]:
            while not predicate(self.received):
                self._changed.clear()
                await self._changed.wait()
            return self.received
        try:
            return await asyncio.wait_for(loop(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"visitor never saw the expected message; got {self.texts()}") from None

    async def wait_text(self, fragment: str, timeout: float = 20.0) -> dict[str, Any]:
        await self.wait_for(lambda ms: any(fragment.lower() in (m.get("text") or "").lower() for m in ms), timeout)
        return next(m for m in self.received if fragment.lower() in (m.get("text") or "").lower())

    async def close(self) -> None:
        """Leave like a browser tab that closes: tell the server (it drops the socket from the
        session's room at once), then abort the pending long-poll instead of waiting ~25 s for the
        server's next ping to answer it."""
        Visitor.open_visitors.discard(self)
        self.sio.reconnection = False
        eio = self.sio.eio
        if eio.state == "connected":
            for namespace in list(self.sio.namespaces):
                await self.sio._send_packet(self.sio.packet_class(socketio.packet.DISCONNECT, namespace=namespace))
            try:
                await asyncio.wait_for(eio.queue.join(), 5)
            except asyncio.TimeoutError:
                pass
        await eio.disconnect(abort=True)
        loops = [t for t in (getattr(eio, "read_loop_task", None), getattr(eio, "write_loop_task", None))
                 if t is not None and not t.done()]
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)


@dataclass
class SseStream:
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: Optional[asyncio.Task[None]] = None

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        async def loop() -> dict[str, Any]:
            while True:
                for ev in self.events:
                    if predicate(ev):
                        return ev
                self.changed.clear()
                await self.changed.wait()
        try:
            return await asyncio.wait_for(loop(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no matching SSE event; saw {[e.get('type') for e in self.events]}") from None


class AgentClient:
    """An agent using the inbox API."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.token: Optional[str] = None
        self.http = aiohttp.ClientSession()
        self.streams: list[SseStream] = []

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, body: Any = None, *, raw: Optional[bytes] = None,
                      headers: Optional[dict[str, str]] = None) -> tuple[int, Any]:
        h = dict(self.headers)
        data: Optional[bytes] = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        async with self.http.request(method, self.base + path, data=data, headers=h) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text) if text else None
            except ValueError:
                return resp.status, text

    async def login(self, username: str, password: str) -> dict[str, Any]:
        status, body = await self.request("POST", "/api/login", {"username": username, "password": password})
        assert status == 200, body
        self.token = body["token"]
        return body["agent"]

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.request(method, path, body)
        assert 200 <= status < 300, (status, data)
        return data

    async def conversation(self, cid: str) -> dict[str, Any]:
        return await self.ok("GET", f"/api/conversations/{cid}")

    async def stream(self, last_event_id: Optional[int] = None) -> SseStream:
        stream = SseStream()
        ready = asyncio.get_running_loop().create_future()

        async def run() -> None:
            h = dict(self.headers)
            if last_event_id is not None:
                h["Last-Event-ID"] = str(last_event_id)
            async with self.http.get(self.base + "/api/events", headers=h, timeout=aiohttp.ClientTimeout(total=None)) as resp:
                assert resp.status == 200, await resp.text()
                ready.set_result(True)
                event: dict[str, Any] = {}
                async for raw in resp.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("id: "):
                        event["id"] = int(line[4:])
                    elif line.startswith("data: "):
                        event["data"] = json.loads(line[6:])
                    elif line == "" and "data" in event:
                        stream.events.append(event["data"])
                        stream.ids.append(event["id"])
                        stream.changed.set()
                        event = {}

        stream.task = asyncio.create_task(run())
        await asyncio.wait_for(ready, 10)
        self.streams.append(stream)
        return stream

    async def close(self) -> None:
        tasks = [s.task for s in self.streams if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.http.close()


def new_id() -> str:
    return uuid.uuid4().hex
