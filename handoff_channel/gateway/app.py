"""Composition root of the gateway: builds the store, bus, service, Rasa pipe, visitor sockets and
inbox API from ``Settings`` and wires them into one Sanic app. Nothing connects at import time."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import sys
from pathlib import Path
from typing import Any, Optional

import socketio
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from ..bus import create_bus
from ..errors import HandoffError
from ..gc_tuning import freeze_startup_objects
from ..rasa_pipe import RasaClient, RasaPipe
from ..service import HandoffService
from ..settings import Settings
from ..store import create_store
from .inbox_api import InboxApi, error_response
from .visitor import VisitorSockets
from .webhooks import WebhookSender

log = logging.getLogger(__name__)

# Files of npm packages the pages load, served from inbox_ui/node_modules (installed by
# scripts/setup.sh from the pinned lockfile). Only these paths are exposed.
VENDOR_FILES = {
    "rasa-webchat.js": "rasa-webchat/lib/index.js",
}

INBOX_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
VISITOR_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; connect-src 'self' ws: wss:; font-src 'self' data:; base-uri 'none'"
)


def _file(path: Path, csp: Optional[str] = None) -> HTTPResponse:
    if not path.is_file():
        return response.json({"error": {"code": "not_found", "message": f"{path.name} is not built"}}, status=404)
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript",):
        ctype += "; charset=utf-8"
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    if csp:
        headers["Content-Security-Policy"] = csp
    return response.raw(path.read_bytes(), content_type=ctype, headers=headers)


def create_app(settings: Optional[Settings] = None, name: str = "handoff_gateway") -> Sanic:
    settings = settings or Settings.from_env()
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = max(settings.max_body_bytes, 1_000_000)
    app.config.RESPONSE_TIMEOUT = 3600  # SSE streams stay open
    app.config.KEEP_ALIVE_TIMEOUT = 75

    store = create_store(settings.db_url, pool_size=settings.db_pool_size)
    bus = create_bus(settings.bus_url)
    service = HandoffService(store, bus, settings)
    rasa = RasaClient(settings)
    pipe = RasaPipe(store, service, rasa, settings)
    origins: Any = "*" if "*" in settings.allowed_origins else list(settings.allowed_origins)
    sio = socketio.AsyncServer(
        async_mode="sanic", cors_allowed_origins=origins, max_http_buffer_size=settings.max_body_bytes,
        ping_interval=20, ping_timeout=20,
        # A visitor's events are handled in the socket's own reader, in order, instead of in two
        # new tasks each (engine.io's, then socket.io's): two fewer trips through the event loop's
        # queue before a visitor's line is stored (docs/bench/ab-runs.md §4).
        async_handlers=False,
    )
    sio.attach(app, socketio_path="socket.io")
    visitors = VisitorSockets(sio, service, store, bus, rasa)
    api = InboxApi(service, store, bus, settings)
    webhooks = WebhookSender(store, bus, settings)
    app.blueprint(api.blueprint())
    app.ctx.settings = settings
    app.ctx.store = store
    app.ctx.bus = bus
    app.ctx.service = service
    app.ctx.pipe = pipe

    async def sweep_silent_agents() -> None:
        # Agents whose inbox went quiet become away; with auto routing nothing is given to them.
        while True:
            await asyncio.sleep(max(settings.heartbeat_timeout_s / 3, 1.0))
            try:
                await service.sweep_silent_agents()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("agent availability sweep failed; retrying")

    async def sweep_unclaimed() -> None:
        # Visitors nobody claimed for a while are offered a choice, and agents alerted again.
        if settings.unclaimed_after_s <= 0:
            return
        while True:
            await asyncio.sleep(min(max(settings.unclaimed_after_s / 6, 1.0), 10.0))
            try:
                await service.sweep_unclaimed()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("unclaimed conversations sweep failed; retrying")

    async def start(app: Sanic, _loop: Any) -> None:
        # The store's threads (PostgreSQL) give up the GIL on every network wait and must win it
        # back from the event loop: at CPython's default 5 ms switch interval a transaction of a
        # few round trips waited tens of milliseconds while holding its row and feed locks.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        await store.open()
        await bus.open()
        await visitors.start()
        await pipe.start()
        app.ctx.sweepers = [asyncio.create_task(sweep_silent_agents(), name="agent-sweep"),
                            asyncio.create_task(sweep_unclaimed(), name="unclaimed-sweep")]
        await webhooks.start()
        # Everything alive now (Sanic, SQLAlchemy, socket.io, our modules) lives as long as the
        # process: take it out of the garbage collector's sight, so a full collection walks only
        # what was allocated since. And make full collections ten times rarer: each one walks every
        # socket's and stream's objects, and stalled the loop 50-150 ms every ~10 s at 500
        # conversations. Young garbage is still collected as often as before.
        freeze_startup_objects()
        log.info("gateway ready: store %s, bus %s, rasa %s", settings.db_url, settings.bus_url, settings.rasa_url)

    async def stop(app: Sanic, _loop: Any) -> None:
        for sweeper in getattr(app.ctx, "sweepers", []):
            sweeper.cancel()
            try:
                await sweeper
            except asyncio.CancelledError:
                pass
        await webhooks.close()
        await pipe.close()
        await visitors.close()
        await bus.close()
        await store.close()

    app.register_listener(start, "before_server_start")
    app.register_listener(stop, "after_server_stop")

    ui = settings.ui_dir

    @app.route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> HTTPResponse:
        try:
            await store.last_event_id()
            db = "ok"
        except HandoffError:
            db = "unavailable"
        # 200 even with the store down: the gateway still serves bot-owned visitors then (fail
        # open), so a load balancer or readiness probe must keep it in rotation.
        return response.json(
            {"status": "ok" if db == "ok" else "degraded", "store": db, "rasa_up": pipe.rasa_up,
             "bus_listening": getattr(bus, "listening", True),
             "instance": settings.instance_id, "visitor_sockets": visitors.connected}
        )

    @app.route("/", methods=["GET"])
    async def visitor_page(request: Request) -> HTTPResponse:
        return _file(ui / "visitor" / "index.html", VISITOR_CSP)

    @app.route("/visitor/<name:path>", methods=["GET"])
    async def visitor_assets(request: Request, name: str) -> HTTPResponse:
        return _safe(ui / "visitor", name, VISITOR_CSP)

    @app.route("/inbox", methods=["GET"])
    async def inbox_page(request: Request) -> HTTPResponse:
        return _file(ui / "app" / "index.html", INBOX_CSP)

    @app.route("/inbox/<name:path>", methods=["GET"])
    async def inbox_assets(request: Request, name: str) -> HTTPResponse:
        return _safe(ui / "app", name, INBOX_CSP)

    @app.route("/vendor/<name>", methods=["GET"])
    async def vendor(request: Request, name: str) -> HTTPResponse:
        rel = VENDOR_FILES.get(name)
        if rel is None:
            return response.json({"error": {"code": "not_found", "message": f"No vendor file {name!r}."}}, status=404)
        return _file(ui / "node_modules" / rel)

    @app.exception(HandoffError)
    async def handoff_error(request: Request, exc: HandoffError) -> HTTPResponse:
        return error_response(exc)

    return app


def _safe(root: Path, name: str, csp: Optional[str]) -> HTTPResponse:
    target = (root / name).resolve()
    if root.resolve() not in target.parents:
        return response.json({"error": {"code": "not_found", "message": "Not found."}}, status=404)
    return _file(target, csp)
