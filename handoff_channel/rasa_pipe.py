"""The gateway's ordered, durable line to Rasa.

Each conversation has an outbox (in the store) and at most one worker draining it in order:
bot turns, records of the human stretch, hand-backs. A worker retries with capped backoff while
Rasa is down or restarting, so bot-owned visitors get their answers once Rasa is back and no item is
lost; human conversations never wait on it, because their messages reach agents and visitors
before anything is sent to Rasa."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Mapping, Optional

import aiohttp

from .models import Conversation, Handoff, Message, OutboxItem, OutboxKind, Role, Status, VisitorChoice, now
from .service import CHOICE_INTENTS, HandoffService
from .settings import Settings
from .store import ConversationStore
from .webchat import from_rasa

log = logging.getLogger(__name__)


# A claimed conversation's lines go to Rasa once this many wait, whatever the batch time, and no
# request records more: it bounds what a hand-back must record first (NLU of each visitor line,
# ~10 ms) and the size of one request, when a visitor pastes or types line after line.
LOG_BATCH_MAX_LINES = 20


class RasaRejected(Exception):
    """Rasa answered 4xx: retrying the same request cannot help."""


class _LeaseLost(Exception):
    """Another instance drains this conversation now (our lease expired while Rasa was away)."""


class RasaClient:
    """HTTP client of the ``HandoffInput`` channel running inside ``rasa run``."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings.rasa_url + "/webhooks/handoff"
        self.token = settings.rasa_token
        self.timeout = aiohttp.ClientTimeout(total=settings.rasa_timeout_s)
        self._session: Optional[aiohttp.ClientSession] = None

    async def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        async with self._session.post(
            self.base + path, json=body, headers={"X-Handoff-Token": self.token}
        ) as resp:
            if 400 <= resp.status < 500:
                raise RasaRejected(f"{path}: HTTP {resp.status}: {(await resp.text())[:300]}")
            if resp.status >= 500:
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message=(await resp.text())[:300]
                )
            data = await resp.json()
            return data if isinstance(data, dict) else {}

    async def turn(
        self, body: Mapping[str, Any], on_message: Optional[Callable[[dict[str, Any]], Awaitable[None]]] = None
    ) -> dict[str, Any]:
        """A bot turn. With ``on_message``, Rasa streams: each bot message is handed to it as soon
        as Rasa utters it (the visitor need not wait for the rest of the turn), and the result's
        ``messages`` are all of them."""
        if on_message is None:
            return await self._post("/turn", body)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = {"X-Handoff-Token": self.token, "Accept": "application/x-ndjson"}
        async with self._session.post(self.base + "/turn", json=body, headers=headers) as resp:
            if 400 <= resp.status < 500:
                raise RasaRejected(f"/turn: HTTP {resp.status}: {(await resp.text())[:300]}")
            if resp.status >= 500:
                raise aiohttp.ClientResponseError(
                    resp.request_info, (), status=resp.status, message=(await resp.text())[:300]
                )
            if resp.content_type != "application/x-ndjson":  # a channel that answers in one piece
                data = await resp.json()
                return data if isinstance(data, dict) else {}
            messages: list[dict[str, Any]] = []
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if isinstance(item, dict) and item.get("done"):
                        return dict(item, messages=messages)
                    if isinstance(item, dict) and isinstance(item.get("message"), dict):
                        messages.append(item["message"])
                        await on_message(item["message"])
            # Rasa stopped (killed, restarted) before the turn's last line: ask again with retry.
            raise aiohttp.ClientPayloadError("the bot turn's answer ended early")

    async def log(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._post("/log", body)

    async def handback(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._post("/handback", body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _log_entry(msg: Message) -> dict[str, Any]:
    return {
        "role": "visitor" if msg.role is Role.VISITOR else ("system" if msg.role is Role.SYSTEM else "agent"),
        "text": msg.text,
        "message_id": f"gw-{msg.id}",
        "author": msg.author,
        "author_name": msg.author_name,
        "timestamp": msg.created_at,
    }


def _is_record(item: OutboxItem, conv: Conversation) -> bool:
    """A line of the human stretch for the tracker: a LOG item, or a visitor turn a human took over
    meanwhile (sent while the bot was deciding to hand off: it goes to the human, not the bot)."""
    return item.kind is OutboxKind.LOG or (item.kind is OutboxKind.TURN and conv.status.human_owned)


class _Nap:
    """A worker waiting for a batch of records to be due; ``room``: lines until the batch is full."""

    def __init__(self, room: int) -> None:
        self.event = asyncio.Event()
        self.room = room


class RasaPipe:
    def __init__(
        self, store: ConversationStore, service: HandoffService, client: RasaClient, settings: Settings
    ) -> None:
        self.store = store
        self.service = service
        self.client = client
        self.settings = settings
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._wake: dict[str, _Nap] = {}  # workers waiting for more lines, woken by a kick
        self._closing = False
        self._sweeper: Optional[asyncio.Task[None]] = None
        self.owner = settings.instance_id
        self.lease_ttl_s = settings.rasa_timeout_s + 30
        self.rasa_up = True
        service.on_outbox = self.kick

    async def start(self) -> None:
        for conversation_id in await self.store.conversations_with_pending_outbox():
            self.kick(conversation_id)
        self._sweeper = asyncio.create_task(self._sweep(), name="rasa-pipe-sweep")

    async def _sweep(self) -> None:
        """Every second, pick up outboxes nobody drains: with several gateways an item may be
        queued by one instance while another drains that conversation, a drainer may die, and
        after a store outage the items queued before it wait for a kick."""
        while True:
            await asyncio.sleep(1.0)
            try:
                for conversation_id in await self.store.conversations_with_pending_outbox(exclude_leased_at=now()):
                    # A worker of ours already has it (e.g. waiting for a claimed conversation's
                    # next lines): every item is kicked when it is queued, so nothing to add.
                    if not self._running(conversation_id):
                        self.kick(conversation_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox sweep failed: %s", exc)

    async def close(self) -> None:
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._workers.values()):
            task.cancel()
        for task in list(self._workers.values()):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self.client.close()

    def _running(self, conversation_id: str) -> bool:
        task = self._workers.get(conversation_id)
        return task is not None and not task.done()

    def kick(self, conversation_id: str, *, line: bool = False) -> None:
        """Something was queued for (or happened to) this conversation: drain its outbox. A worker
        that waits for more lines looks again at once: a hand-back, a bot turn or a change of
        owner may mean the lines must go now. ``line``: only a line of a claimed conversation was
        queued, which changes nothing for a waiting batch until it makes the batch full; the
        worker is not woken for it (re-reading a minute of lines on every line cost the gateway
        a sixth of a core at 500 conversations, in steps of up to tens of milliseconds)."""
        if self._closing:
            return
        if self._running(conversation_id):
            nap = self._wake.get(conversation_id)
            if line and nap is not None and not nap.event.is_set():
                nap.room -= 1
                if nap.room > 0:
                    return  # read with the rest when the batch is due
            self._again.add(conversation_id)
            if nap is not None:
                nap.event.set()
            return
        self._workers[conversation_id] = asyncio.create_task(self._drain(conversation_id))

    async def _nap(self, conversation_id: str, seconds: float, room: int) -> None:
        nap = self._wake[conversation_id] = _Nap(room)
        try:
            await asyncio.wait_for(nap.event.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            if self._wake.get(conversation_id) is nap:
                del self._wake[conversation_id]

    async def idle(self) -> None:
        """Wait until every outbox is drained (for tests and graceful shutdown)."""
        while any(not t.done() for t in self._workers.values()):
            await asyncio.gather(*[t for t in self._workers.values() if not t.done()], return_exceptions=True)

    async def _drain(self, conversation_id: str) -> None:
        leased = False
        try:
            while True:
                self._again.discard(conversation_id)
                conv, items, messages = await self.store.outbox_work(conversation_id)
                if not items:
                    if conversation_id in self._again:
                        continue
                    return
                wait = self._linger(conv, items)
                if wait > 0:
                    await self._nap(conversation_id, wait, LOG_BATCH_MAX_LINES - len(items))
                    continue
                if self.store.shared:
                    # One drainer per conversation across instances, renewed before every item.
                    leased = await self.store.acquire_lease(conversation_id, self.owner, self.lease_ttl_s)
                    if not leased:
                        return
                done = await self._process(conversation_id, items, conv, messages)
                # Every item is queued by a kick after its commit, and a kick while this worker runs
                # lands in _again: with the whole batch sent and no kick, nothing new is pending.
                # Only a shared store (another instance may queue items) needs another look.
                if done == len(items) and conversation_id not in self._again and not self.store.shared:
                    return
        except asyncio.CancelledError:
            raise
        except _LeaseLost:
            log.info("outbox of %s: another instance took over its items while Rasa was away", conversation_id)
            leased = False
        except Exception:
            # A bug must not kill the line for good: log it, and the next kick retries.
            log.exception("rasa pipe for %s failed", conversation_id)
        finally:
            if leased:
                try:
                    await self.store.release_lease(conversation_id, self.owner)
                except Exception as exc:  # it expires by itself
                    log.warning("could not release the outbox lease of %s: %s", conversation_id, exc)
            if self._workers.get(conversation_id) is asyncio.current_task():
                del self._workers[conversation_id]

    def _linger(self, conv: Optional[Conversation], items: list[OutboxItem]) -> float:
        """How long to wait for more lines before sending a batch that holds only records: longer
        while an agent has the conversation (``rasa_log_claimed_batch_s``), since nothing reads
        Rasa's copy before the hand-back, and the hand-back sends the batch first."""
        if conv is None or not all(_is_record(i, conv) for i in items):
            return 0.0
        batch = self.settings.rasa_log_batch_s
        if conv.status is Status.ASSIGNED and len(items) < LOG_BATCH_MAX_LINES:
            batch = max(batch, self.settings.rasa_log_claimed_batch_s)
        if batch <= 0:
            return 0.0
        return items[0].created_at + batch - now()

    async def _with_retry(
        self, what: str, call: Callable[[int], Awaitable[dict[str, Any]]], items: list[OutboxItem]
    ) -> Optional[dict[str, Any]]:
        delay = 0.1
        attempt = 0
        conversation_id = items[0].conversation_id
        while True:
            if attempt and self.store.shared:
                # A retry may outlast the lease: renew it, or stop if another instance holds it now
                # (two drainers would send the same turn to Rasa twice).
                if not await self.store.acquire_lease(conversation_id, self.owner, self.lease_ttl_s):
                    raise _LeaseLost(conversation_id)
            try:
                result = await call(attempt)
                if not self.rasa_up:
                    log.info("Rasa is reachable again")
                self.rasa_up = True
                if attempt:
                    log.info("%s for %s went through on attempt %d", what, conversation_id, attempt + 1)
                return result
            except RasaRejected as exc:
                log.error("Rasa refused %s for %s: %s (dropped)", what, conversation_id, exc)
                return None
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                if self.rasa_up:
                    log.warning("Rasa unreachable (%s); %s will be retried", exc, what)
                self.rasa_up = False
                attempt += 1
                await self.store.bump_outbox_attempts([i.id for i in items])
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.rasa_retry_max_s)

    async def _mark_sent(self, item: OutboxItem) -> None:
        """Counted before the first send, not only after a failure: if this gateway dies after Rasa
        ran the turn (or hand-back) but before the item is finished, whoever sends it again sends it
        with ``retry`` and Rasa answers from its tracker instead of running it a second time."""
        if item.attempts == 0:
            await self.store.bump_outbox_attempts([item.id])

    async def _process(
        self, conversation_id: str, items: list[OutboxItem], conv: Optional[Conversation],
        messages: Mapping[int, Message],
    ) -> int:
        """Send the head of the outbox (a bot turn, a hand-back, or a run of records); returns how
        many items it finished."""
        if conv is None:
            await self.store.finish_outbox([i.id for i in items])
            return len(items)
        head = items[0]
        if head.kind is OutboxKind.TURN and not conv.status.human_owned:
            await self._turn(conversation_id, head, messages)
            return 1
        if head.kind is OutboxKind.HANDBACK:
            await self._handback(conversation_id, head)
            return 1
        # A run of records.
        batch: list[OutboxItem] = []
        for item in items[:LOG_BATCH_MAX_LINES]:
            if _is_record(item, conv):
                batch.append(item)
            else:
                break
        await self._log(conversation_id, batch, messages)
        return len(batch)

    async def _turn(self, conversation_id: str, item: OutboxItem, messages: Mapping[int, Message]) -> None:
        msg = messages.get(int(item.payload["message_id"]))
        if msg is None:
            await self.store.finish_outbox([item.id])
            return
        metadata = dict((msg.meta or {}).get("metadata") or {})
        try:
            # Whether a person could take over now: action_handoff offers an offline ticket instead.
            metadata["handoff_desk"] = await self.service.desk_status()
        except Exception as exc:  # the bot path fails open: without it the bot hands off as usual
            log.warning("desk status unknown for a bot turn of %s: %s", conversation_id, exc)
        turn_id = f"gw-{msg.id}"
        body = {
            "conversation_id": conversation_id,
            "message_id": turn_id,
            "text": msg.text,
            "metadata": metadata,
        }

        recorded = 0

        async def deliver(message: dict[str, Any]) -> None:
            # Stored and relayed while Rasa finishes the turn; numbered, so that a retry which
            # replays the whole answer stores none of it twice.
            nonlocal recorded
            parts = from_rasa(message)
            await self.service.record_bot_messages(conversation_id, parts, client_id=turn_id, first=recorded)
            recorded += len(parts)

        async def call(attempt: int) -> dict[str, Any]:
            # Each attempt numbers from 0: what an earlier, broken attempt stored is not stored again.
            nonlocal recorded
            recorded = 0
            return await self.client.turn(dict(body, retry=attempt > 0 or item.attempts > 0), deliver)

        await self._mark_sent(item)
        result = await self._with_retry("a bot turn", call, [item])
        if result is not None:
            await self._apply_bot_result(conversation_id, result, visitor_message=msg, client_id=turn_id,
                                         streamed=recorded)
        await self.store.finish_outbox([item.id])

    async def _apply_bot_result(
        self, conversation_id: str, result: Mapping[str, Any], visitor_message: Optional[Message] = None,
        client_id: Optional[str] = None, streamed: int = 0,
    ) -> None:
        parts = []
        for m in result.get("messages") or []:
            if isinstance(m, Mapping):
                parts.extend(from_rasa(m))
        # The visitor waits for the answer; the intent and sentiment are for the inbox, after it.
        # The first ``streamed`` parts were stored as Rasa uttered them.
        await self.service.record_bot_messages(conversation_id, parts[streamed:], client_id=client_id, first=streamed)
        parse = result.get("parse")
        if visitor_message is not None and isinstance(parse, Mapping):
            await self.service.annotate_visitor_message(visitor_message, parse)
        ticket = result.get("ticket")
        if isinstance(ticket, Mapping):
            await self.service.record_ticket(conversation_id, ticket)
        handoff = result.get("handoff")
        if isinstance(handoff, Mapping):
            summary = handoff.get("summary")
            await self.service.record_handoff(
                conversation_id,
                Handoff(
                    reason=str(handoff.get("reason") or "explicit_request"),
                    priority=int(handoff.get("priority") or 2),
                    team=handoff.get("team"),
                    evidence=handoff.get("evidence") or {},
                    summary=summary if isinstance(summary, Mapping) else {},
                ),
            )

    async def _log(self, conversation_id: str, batch: list[OutboxItem], messages: Mapping[int, Message]) -> None:
        entries = []
        for item in batch:
            msg = messages.get(int(item.payload["message_id"]))
            if msg is not None:
                entries.append(_log_entry(msg))
        result = None
        if entries:
            body = {"conversation_id": conversation_id, "entries": entries}
            result = await self._with_retry("recording the human stretch", lambda _a: self.client.log(body), batch)
        await self.store.finish_outbox([i.id for i in batch])
        if result is not None:
            await self._act_on_choices(conversation_id, entries, result.get("intents"))

    async def _act_on_choices(self, conversation_id: str, entries: list[dict[str, Any]], intents: Any) -> None:
        """A visitor waiting in the queue said "never mind", "I'll leave a message" or "I'll wait"
        (or clicked the button): the bot's NLU recognised it while recording the turn."""
        if not isinstance(intents, Mapping):
            return
        for entry in entries:
            if entry["role"] != "visitor":
                continue
            found = intents.get(entry["message_id"])
            if not isinstance(found, Mapping):
                continue
            choice = CHOICE_INTENTS.get(str(found.get("name")))
            confidence = found.get("confidence")
            if choice is None or not isinstance(confidence, (int, float)):
                continue
            if confidence < self.settings.choice_min_confidence:
                continue
            if await self.service.visitor_choice(conversation_id, choice):
                log.info("visitor of %s chose %s while waiting", conversation_id, choice.value)
                if choice is not VisitorChoice.KEEP_WAITING:
                    return  # the wait is over; one choice per batch is enough

    async def _handback(self, conversation_id: str, item: OutboxItem) -> None:
        handback_id = f"hb-{item.id}"
        body = dict(item.payload, conversation_id=conversation_id, handback_id=handback_id)
        await self._mark_sent(item)
        result = await self._with_retry(
            "the hand-back", lambda a: self.client.handback(dict(body, retry=a > 0 or item.attempts > 0)), [item]
        )
        if result is not None:
            await self._apply_bot_result(conversation_id, result, client_id=handback_id)
        await self.store.finish_outbox([item.id])
