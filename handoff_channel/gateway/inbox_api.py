"""The agents' HTTP API and event stream (SSE, with a long-poll fallback). JSON is parsed here,
once; errors from the service become HTTP answers in one place (``error_response``)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Awaitable, Callable, Optional

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from .. import auth
from ..bus import EventBus
from ..errors import (
    HandoffError,
    InvalidJson,
    InvalidPayload,
    PayloadTooLarge,
    Unauthorized,
)
from ..models import Agent, Availability, Event, now
from ..service import HandoffService
from ..settings import Settings
from ..store import ConversationStore
from .feed import FeedReader

log = logging.getLogger(__name__)

COOKIE = "handoff_session"
SHORTCUT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def error_response(exc: HandoffError) -> HTTPResponse:
    return response.json(exc.as_dict(), status=exc.status)


def _sse_frame(event: Event) -> str:
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.as_dict(), separators=(',', ':'))}\n\n"


class InboxApi:
    def __init__(self, service: HandoffService, store: ConversationStore, bus: EventBus, settings: Settings) -> None:
        self.service = service
        self.store = store
        self.bus = bus
        self.settings = settings
        # Every open inbox streams every event: encode each one once, not once per stream.
        self._frames: dict[int, str] = {}

    def _frame(self, event: Event) -> str:
        frame = self._frames.get(event.id)
        if frame is None:
            frame = _sse_frame(event)
            if len(self._frames) >= 2048:  # the streams are at most a moment apart
                self._frames.clear()
            self._frames[event.id] = frame
        return frame

    # -- parsing and auth ------------------------------------------------------------------------
    def body(self, request: Request) -> dict[str, Any]:
        raw = request.body or b""
        if len(raw) > self.settings.max_body_bytes:
            raise PayloadTooLarge(f"The request body is larger than {self.settings.max_body_bytes} bytes.")
        if not raw.strip():
            return {}
        ctype = request.headers.get("content-type", "")
        if "application/json" not in ctype:
            raise InvalidPayload("Send the body as JSON (Content-Type: application/json).")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidJson(f"The body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise InvalidPayload("The body must be a JSON object.")
        return data

    @staticmethod
    def _token(request: Request) -> Optional[str]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip() or None
        return request.cookies.get(COOKIE) or None

    async def agent(self, request: Request) -> Agent:
        token = self._token(request)
        if not token:
            raise Unauthorized("Log in first: send 'Authorization: Bearer <token>' or the session cookie.")
        agent = await self.store.session_agent(auth.token_hash(token), now())
        if agent is None:
            raise Unauthorized("The session is unknown or has expired; log in again.")
        await self.service.heartbeat(agent)  # any authenticated request shows the inbox is open
        return agent

    # -- routes ---------------------------------------------------------------------------------
    def blueprint(self) -> Blueprint:
        bp = Blueprint("inbox_api", url_prefix="/api")
        api = self

        def route(path: str, methods: list[str], *, authenticated: bool = True) -> Callable[[Any], Any]:
            def decorate(fn: Callable[..., Awaitable[HTTPResponse]]) -> Any:
                async def handler(request: Request, **kwargs: Any) -> HTTPResponse:
                    try:
                        if authenticated:
                            kwargs["agent"] = await api.agent(request)
                        return await fn(request, **kwargs)
                    except HandoffError as exc:
                        return error_response(exc)
                handler.__name__ = fn.__name__
                bp.add_route(handler, path, methods=methods)
                return handler
            return decorate

        @route("/login", ["POST"], authenticated=False)
        async def login(request: Request) -> HTTPResponse:
            body = api.body(request)
            username, password = body.get("username"), body.get("password")
            if not isinstance(username, str) or not isinstance(password, str):
                raise InvalidPayload("Send 'username' and 'password'.")
            found = await api.store.agent_credentials(username.strip())
            if found is None or not auth.verify_password(password, found[1]):
                raise Unauthorized("Wrong username or password.")
            agent = found[0]
            token = auth.new_token()
            await api.store.create_session(auth.token_hash(token), agent.username, now() + api.settings.session_ttl_s)
            if agent.availability is Availability.AWAY:
                agent = await api.service.set_availability(agent, Availability.AVAILABLE.value)
            else:
                await api.service.heartbeat(agent, force=True)
            resp = response.json({"token": token, "agent": agent.as_dict()})
            resp.cookies[COOKIE] = token
            resp.cookies[COOKIE]["httponly"] = True
            resp.cookies[COOKIE]["samesite"] = "Strict"
            resp.cookies[COOKIE]["path"] = "/"
            resp.cookies[COOKIE]["max-age"] = int(api.settings.session_ttl_s)
            if api.settings.cookie_secure:
                resp.cookies[COOKIE]["secure"] = True
            return resp

        @route("/logout", ["POST"])
        async def logout(request: Request, agent: Agent) -> HTTPResponse:
            token = api._token(request)
            if token:
                await api.store.delete_session(auth.token_hash(token))
            await api.service.set_availability(agent, Availability.AWAY.value)
            resp = response.empty()
            del resp.cookies[COOKIE]
            return resp

        @route("/me", ["GET"])
        async def me(request: Request, agent: Agent) -> HTTPResponse:
            return response.json(agent.as_dict())

        @route("/me/availability", ["POST"])
        async def availability(request: Request, agent: Agent) -> HTTPResponse:
            value = api.body(request).get("availability")
            return response.json((await api.service.set_availability(agent, value)).as_dict())

        @route("/me/heartbeat", ["POST"])
        async def heartbeat(request: Request, agent: Agent) -> HTTPResponse:
            api.body(request)
            await api.service.heartbeat(agent, force=True)
            return response.empty()

        @route("/agents", ["GET"])
        async def agents(request: Request, agent: Agent) -> HTTPResponse:
            return response.json(await api.service.agents_overview(agent))

        @route("/agents/<username>", ["POST"])
        async def agent_update(request: Request, username: str, agent: Agent) -> HTTPResponse:
            api.service.require_supervisor(agent)
            body = api.body(request)
            updated = await api.service.update_agent(agent, username, body.get("capacity"), body.get("teams"))
            return response.json(updated.as_dict())

        @route("/conversations", ["GET"])
        async def conversations(request: Request, agent: Agent) -> HTTPResponse:
            view = request.args.get("view", "open")
            last_event_id = await api.store.last_event_id()
            convs = await api.service.conversations(view, agent)
            rows = [dict(c.summary_dict(), queue_priority=api.service.queue_priority(c)) for c in convs]
            return response.json({"conversations": rows, "last_event_id": last_event_id})

        async def detail(conversation_id: str) -> HTTPResponse:
            conv, messages, timeline = await api.service.conversation(conversation_id)
            data = conv.summary_dict()
            data.update(
                handoff=conv.handoff.as_dict() if conv.handoff else None,
                metadata=dict(conv.metadata),
                messages=[m.as_dict() for m in messages],
                timeline=[t.as_dict() for t in timeline],
            )
            return response.json(data)

        @route("/conversations/<conversation_id>", ["GET"])
        async def conversation(request: Request, conversation_id: str, agent: Agent) -> HTTPResponse:
            return await detail(conversation_id)

        @route("/conversations/<conversation_id>/claim", ["POST"])
        async def claim(request: Request, conversation_id: str, agent: Agent) -> HTTPResponse:
            api.body(request)
            await api.service.claim(conversation_id, agent)
            return await detail(conversation_id)

        @route("/conversations/<conversation_id>/transfer", ["POST"])
        async def transfer(request: Request, conversation_id: str, agent: Agent) -> HTTPResponse:
            body = api.body(request)
            await api.service.transfer(conversation_id, agent, body.get("to"), body.get("note"), team=body.get("team"))
            return await detail(conversation_id)

        @route("/conversations/<conversation_id>/escalate", ["POST"])
        async def escalate(request: Request, conversation_id: str, agent: Agent) -> HTTPResponse:
            body = api.body(request)
            await api.service.escalate(conversation_id, agent, body.get("note"))
            return await detail(conversation_id)

        @route("/directory", ["GET"])
        async def directory(request: Request, agent: Agent) -> HTTPResponse:
            return response.json(await api.service.directory())

        @route("/tickets", ["GET"])
        async def tickets(request: Request, agent: Agent) -> HTTPResponse:
            found = await api.service.tickets(request.args.get("status", "open"))
            return response.json({"tickets": [t.as_dict() for t in found]})

        @route("/tickets/<ticket_id:int>/close", ["POST"])
        async def ticket_close(request: Request, ticket_id: int, agent: Agent) -> HTTPResponse:
            body = api.body(request)
            return response.json((await api.service.close_ticket(ticket_id, agent, body.get("note"))).as_dict())

        @route("/conversations/<conversation_id>/messages", ["POST"])
        async def reply(request: Request, conversation_id: str, agent: Agent) -> HTTPResponse:
            body = api.body(request)
            client_id = body.get("client_id")
            if client_id is not None and not isinstance(client_id, str):
                raise InvalidPayload("'client_id' must be a string.")
            msg = await api.service.agent_reply(conversation_id, agent, body.get("text"), client_id=client_id)
            return response.json(msg.as_dict(), status=201)

        @route("/conversations/<conversation_id>/notes", ["POST"])
        async def note(request: Request, conversation_id: str, agent: Agent) -> HTTPResponse:
            body = api.body(request)
            await api.store.get_conversation(conversation_id)
            msg = await api.service.add_note(conversation_id, agent, body.get("text"))
            return response.json(msg.as_dict(), status=201)

        @route("/conversations/<conversation_id>/handback", ["POST"])
        async def handback(request: Request, conversation_id: str, agent: Agent) -> HTTPResponse:
            body = api.body(request)
            await api.service.hand_back(
                conversation_id, agent, outcome=body.get("outcome", "continue"),
                note=body.get("note"), facts=body.get("facts"),
            )
            return await detail(conversation_id)

        @route("/conversations/<conversation_id>/resolve", ["POST"])
        async def resolve(request: Request, conversation_id: str, agent: Agent) -> HTTPResponse:
            body = api.body(request)
            await api.service.resolve(conversation_id, agent, note=body.get("note"))
            return await detail(conversation_id)

        @route("/canned", ["GET"])
        async def canned_list(request: Request, agent: Agent) -> HTTPResponse:
            return response.json({"canned": [c.as_dict() for c in await api.store.canned_responses()]})

        @route("/canned", ["POST"])
        async def canned_add(request: Request, agent: Agent) -> HTTPResponse:
            body = api.body(request)
            shortcut, text = body.get("shortcut"), body.get("text")
            if not isinstance(shortcut, str) or not SHORTCUT.match(shortcut.strip().lstrip("/")):
                raise InvalidPayload("'shortcut' must be 1-64 letters, digits, '-' or '_'.")
            clean = api.service._clean_text(text)
            item = await api.store.add_canned_response(shortcut.strip().lstrip("/").lower(), clean, agent.username)
            return response.json(item.as_dict(), status=201)

        @route("/canned/<canned_id:int>", ["DELETE"])
        async def canned_delete(request: Request, canned_id: int, agent: Agent) -> HTTPResponse:
            await api.store.delete_canned_response(canned_id)
            return response.empty()

        @route("/events/poll", ["GET"])
        async def poll(request: Request, agent: Agent) -> HTTPResponse:
            after = api._int_arg(request, "after", None)
            if after is None:
                return response.json({"events": [], "last_event_id": await api.store.last_event_id()})
            timeout = min(max(api._int_arg(request, "timeout", 25) or 0, 0), 55)
            sub = api.bus.subscribe()
            try:
                events = await api.store.events_after(after)
                if not events and timeout:
                    try:
                        await sub.get(timeout)
                    except asyncio.TimeoutError:
                        pass
                    events = await api.store.events_after(after)
            finally:
                await sub.close()
            last = events[-1].id if events else after
            return response.json({"events": [e.as_dict() for e in events], "last_event_id": last})

        async def events(request: Request) -> HTTPResponse:
            try:
                agent = await api.agent(request)
                last = api._int_arg(request, "last_event_id", None)
            except HandoffError as exc:
                return error_response(exc)
            header = request.headers.get("last-event-id")
            if header and header.strip().isdigit():
                last = int(header.strip())
            await api.stream(request, last, agent)
            return None  # type: ignore[return-value]

        bp.add_route(events, "/events", methods=["GET"])
        return bp

    @staticmethod
    def _int_arg(request: Request, name: str, default: Optional[int]) -> Optional[int]:
        value = request.args.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidPayload(f"'{name}' must be a whole number.") from None

    async def stream(self, request: Request, last: Optional[int], agent: Optional[Agent] = None) -> None:
        """Server-sent events: first what the client missed since ``last`` (from the store), then
        live events from the bus, always in id order (``FeedReader``: an event above a gap waits
        for the missing ones, from the bus or else the store)."""
        sub = self.bus.subscribe()
        resp = await request.respond(
            content_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        try:
            await resp.send(": connected\nretry: 2000\n\n")
            if last is None:
                last = await self.store.last_event_id()
            reader = FeedReader(self.store, sub, last)
            while True:
                try:
                    run = await reader.read(self.settings.sse_keepalive_s)
                except asyncio.TimeoutError:
                    await resp.send(": keep-alive\n\n")
                    if agent is not None:  # an open stream is an open inbox
                        try:
                            await self.service.heartbeat(agent)
                        except HandoffError as exc:
                            log.warning("heartbeat of %s not recorded: %s", agent.username, exc)
                    continue
                if run is None:  # dropped for falling behind: the client reconnects with Last-Event-ID
                    return
                # One write for a run: events that were ready together leave together.
                await resp.send("".join(self._frame(ev) for ev in run))
        except asyncio.CancelledError:
            raise  # the client disconnected; the finally block cleans up
        except (ConnectionError, OSError):
            pass
        except Exception as exc:  # the client went away mid-write
            log.debug("SSE stream ended: %s", exc)
        finally:
            await sub.close()
            try:
                await resp.eof()
            except Exception:
                pass
