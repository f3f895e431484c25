"""Outbound webhooks: signed POSTs of handoff events (requested, assigned, transferred, escalated,
cancelled, unclaimed, message, resolved) and offline tickets (created, updated) to the URLs in HANDOFF_WEBHOOK_URLS, so teams can plug in Slack, email or SMS.

A background worker reads the store's feed after a cursor and delivers in feed order; no request
ever waits on a webhook. With several gateways on one store, one of them (the holder of a lease
in the outbox lease table) delivers. The cursor lives in memory and starts at the feed's end when
the worker starts, so events that happen while no gateway runs are not sent later; a receiver
that cannot answer is retried a few times, then skipped (logged)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from typing import Any, Optional

import aiohttp

from ..bus import EventBus
from ..models import Event, Role
from ..settings import Settings
from ..store import ConversationStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Handoff-Signature"
LEASE_KEY = "__webhooks__"  # a lease row no conversation id can take (ids match [A-Za-z0-9_.:-])

# Timeline kinds that become webhook events, and their names on the wire.
STATUS_EVENTS = {
    "handoff_requested": "handoff.requested",
    "claimed": "handoff.assigned",
    "transferred": "handoff.transferred",
    "resolved": "handoff.resolved",
    "handed_back": "handoff.handed_back",
    "team_transferred": "handoff.transferred",
    "escalated": "handoff.escalated",
    "cancelled": "handoff.cancelled",
    "unclaimed": "handoff.unclaimed",
}


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_payload(event: Event) -> Optional[dict[str, Any]]:
    """What a feed event becomes on the wire, or None if it is not a webhook event. Internal
    notes never leave the gateway."""
    data = event.data
    if event.type == "conversation_updated":
        entry = data.get("timeline")
        kind = entry.get("kind") if isinstance(entry, dict) else None
        name = STATUS_EVENTS.get(kind or "")
        if name is None:
            return None
        return {"event": name, "id": event.id, "conversation_id": event.conversation_id,
                "created_at": event.created_at, "conversation": data.get("conversation"), "timeline": entry}
    if event.type in ("ticket_created", "ticket_updated"):
        name = "ticket.created" if event.type == "ticket_created" else "ticket.updated"
        return {"event": name, "id": event.id, "conversation_id": event.conversation_id,
                "created_at": event.created_at, "ticket": data.get("ticket")}
    if event.type == "message_created":
        message = data.get("message")
        if not isinstance(message, dict) or message.get("role") == Role.NOTE.value:
            return None
        return {"event": "message.created", "id": event.id, "conversation_id": event.conversation_id,
                "created_at": event.created_at, "message": message}
    return None


class WebhookSender:
    def __init__(self, store: ConversationStore, bus: EventBus, settings: Settings, *,
                 retry_delays: tuple[float, ...] = (0.5, 2.0, 5.0)) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.retry_delays = retry_delays
        self.owner = f"webhooks-{settings.instance_id}-{uuid.uuid4().hex[:6]}"
        self._task: Optional[asyncio.Task[None]] = None
        self._session: Optional[aiohttp.ClientSession] = None
        self.cursor = 0
        self._closing = False

    @property
    def enabled(self) -> bool:
        return bool(self.settings.webhook_urls)

    async def start(self) -> None:
        if not self.enabled:
            return
        self.cursor = await self.store.last_event_id()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s))
        self._task = asyncio.create_task(self._run(), name="webhooks")

    async def close(self) -> None:
        # The flag, not only the cancellation: on Python 3.10 asyncio.wait_for can swallow a
        # cancellation that arrives as its inner wait completes.
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        sub = self.bus.subscribe()
        try:
            while not self._closing:
                try:
                    await self.deliver_pending()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook delivery failed; retrying")
                try:
                    # Woken by any new event; the timeout also renews the lease and catches up
                    # on events published by other gateways.
                    if await sub.get(5.0) is None:  # dropped for falling behind: the feed has it all
                        await sub.close()
                        sub = self.bus.subscribe()
                except asyncio.TimeoutError:
                    pass
        finally:
            await sub.close()

    async def deliver_pending(self) -> int:
        """Send every webhook event after the cursor (if this gateway holds the lease). Returns
        how many were sent."""
        sent = 0
        while True:
            if self.store.shared and not await self.store.acquire_lease(LEASE_KEY, self.owner, 30.0):
                # Another gateway delivers; keep up with the feed so a takeover does not resend.
                self.cursor = max(self.cursor, await self.store.last_event_id())
                return sent
            batch = await self.store.events_after(self.cursor, limit=200)
            for event in batch:
                payload = webhook_payload(event)
                if payload is not None:
                    await self._post_all(payload)
                    sent += 1
                self.cursor = event.id
            if len(batch) < 200:
                return sent

    async def _post_all(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: sign(body, self.settings.webhook_secret)}
        for url in self.settings.webhook_urls:
            for attempt, delay in enumerate((0.0, *self.retry_delays)):
                if delay:
                    await asyncio.sleep(delay)
                try:
                    assert self._session is not None
                    async with self._session.post(url, data=body, headers=headers) as resp:
                        if resp.status < 500:
                            if resp.status >= 400:
                                log.warning("webhook %s refused %s: HTTP %s", url, payload["event"], resp.status)
                            break
                        reason = f"HTTP {resp.status}"
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    reason = str(exc) or type(exc).__name__
                if attempt == len(self.retry_delays):
                    log.warning("webhook %s: gave up on event %s (%s)", url, payload["id"], reason)
