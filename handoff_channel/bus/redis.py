"""The bus shared by several gateway instances through Redis pub/sub (one channel, ``<prefix>:events``).

This module owns the Redis side of the bus: the wire form of an event, the one background listener
per process (subscribe, fan out, reconnect with capped backoff, detect a silent connection with
PING), and the background sender that publishes without making the caller wait on Redis. Fan-out
to this process's subscribers is the memory bus's job: it is reused, not re-implemented.

Guarantees, and what they are not:

* A subscriber sees the events of its own process at once, in publish order; events of another
  instance arrive through Redis in that instance's publish order. There is no order *across*
  instances: consumers order by event id and fill gaps from the store.
* Every message carries the origin id of the bus that sent it; the listener drops its own echo,
  so a local subscriber never gets the same publish twice.
* Pub/sub keeps nothing for a listener that is not connected. Whenever the listener subscribes
  again after having been unsubscribed while open (a dropped connection, or Redis down when the
  bus opened), every local subscriber gets ``resync_event()`` and catches up from the store.
* Delivery to other instances is at least once and best effort: a publish that fails is retried
  from a bounded outbox, so another instance may see an event twice (consumers skip ids they
  have) or, after the outbox overflowed, not at all (the store still has it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from ..models import Event
from .base import resync_event
from .memory import MemoryEventBus, MemorySubscription

log = logging.getLogger(__name__)

WIRE_VERSION = 1
DEFAULT_PREFIX = "handoff"
PREFIX_PARAM = "channel_prefix"  # our own URL query parameter; redis-py never sees it


def encode_event(event: Event, origin: str) -> str:
    """The JSON published to Redis: the event's fields and the origin of the bus that sent it."""
    return json.dumps(
        {
            "v": WIRE_VERSION,
            "origin": origin,
            "event": {
                "id": event.id,
                "type": event.type,
                "conversation_id": event.conversation_id,
                "data": dict(event.data),
                "created_at": event.created_at,
            },
        },
        separators=(",", ":"),
    )


def decode_event(raw: bytes | str) -> tuple[str, Event]:
    """``(origin, event)`` from a message of ``encode_event``. Raises ValueError on anything else."""
    msg = json.loads(raw)
    if not isinstance(msg, dict) or msg.get("v") != WIRE_VERSION:
        raise ValueError(f"not a version {WIRE_VERSION} bus message")
    origin, body = msg.get("origin"), msg.get("event")
    if not isinstance(origin, str) or not isinstance(body, dict):
        raise ValueError("a bus message needs 'origin' and 'event'")
    ev_id, ev_type, cid = body.get("id"), body.get("type"), body.get("conversation_id")
    data, created_at = body.get("data"), body.get("created_at")
    if (
        not isinstance(ev_id, int) or isinstance(ev_id, bool)
        or not isinstance(ev_type, str)
        or not isinstance(cid, str)
        or not isinstance(data, dict)
        or not isinstance(created_at, (int, float)) or isinstance(created_at, bool)
    ):
        raise ValueError("malformed event in bus message")
    return origin, Event(id=ev_id, type=ev_type, conversation_id=cid, data=data, created_at=float(created_at))


def _split_url(url: str) -> tuple[str, Optional[str]]:
    """The URL without our ``channel_prefix`` parameter (redis-py rejects unknown ones), and its value."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == PREFIX_PARAM), None)
    rest = urlencode([(k, v) for k, v in query if k != PREFIX_PARAM])
    return urlunsplit(parts._replace(query=rest)), prefix


def _redacted(url: str) -> str:
    """The URL fit for a log line: no user, no password, no query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RedisEventBus:
    """``EventBus`` for several gateway processes sharing one Redis.

    ``url`` is a redis-py URL (``redis://``, ``rediss://``, ``unix://``); its query may set
    redis-py options and ``channel_prefix`` (default ``handoff``). The timing knobs exist so tests
    can make an outage short; the defaults suit production.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: Optional[str] = None,
        max_backlog: int = 10_000,
        max_outbox: int = 10_000,
        backoff_min_s: float = 0.1,
        backoff_max_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        ping_interval_s: float = 10.0,
        ping_timeout_s: float = 5.0,
        open_timeout_s: float = 2.0,
        close_flush_s: float = 1.0,
    ) -> None:
        self._url, url_prefix = _split_url(url)
        self.channel = f"{prefix or url_prefix or DEFAULT_PREFIX}:events"
        self.origin = uuid.uuid4().hex
        self._where = _redacted(self._url)
        self._local = MemoryEventBus(max_backlog=max_backlog)
        self._max_outbox = max_outbox
        self._backoff = (backoff_min_s, backoff_max_s)
        self._connect_timeout = connect_timeout_s
        self._ping_interval = ping_interval_s
        self._ping_timeout = ping_timeout_s
        self._open_timeout = open_timeout_s
        self._close_flush = close_flush_s
        # Created by open(), so that constructing the bus (or importing this module) touches nothing.
        self._client: Optional[aioredis.Redis] = None
        self._outbox: Optional[asyncio.Queue[str]] = None
        self._tasks: list[asyncio.Task[None]] = []
        self._first_attempt: Optional[asyncio.Event] = None
        self._listening = False
        self._stopping = False
        self._dropped = 0

    @property
    def listening(self) -> bool:
        """Whether the listener is subscribed right now (events of other instances arrive)."""
        return self._listening

    # -- EventBus ---------------------------------------------------------------------------------
    async def open(self) -> None:
        """Start the listener and the sender. Waits a moment for the first subscription so a fresh
        gateway hears other instances at once, but never fails: if Redis is down the listener
        keeps retrying in the background and says so in the log."""
        if self._tasks:
            return
        self._stopping = False
        self._client = aioredis.from_url(
            self._url, socket_connect_timeout=self._connect_timeout, socket_timeout=self._connect_timeout
        )
        if self._outbox is None:  # publish() may have queued events before open()
            self._outbox = asyncio.Queue(maxsize=self._max_outbox)
        self._first_attempt = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name=f"redis-bus-listener-{self.origin[:8]}"),
            asyncio.create_task(self._send_forever(), name=f"redis-bus-sender-{self.origin[:8]}"),
        ]
        try:
            await asyncio.wait_for(self._first_attempt.wait(), self._open_timeout)
        except asyncio.TimeoutError:
            pass
        if not self._listening:
            log.warning(
                "event bus: Redis at %s is not reachable yet; this instance serves its own events and "
                "keeps retrying, other instances' events arrive once Redis answers", self._where,
            )

    async def close(self) -> None:
        """Flush what is queued for Redis (briefly), stop the background tasks, disconnect, and end
        every local subscription."""
        if self._outbox is not None and not self._outbox.empty() and self._listening:
            try:
                await asyncio.wait_for(self._outbox.join(), self._close_flush)
            except asyncio.TimeoutError:
                log.warning("event bus: %d events were not published to Redis before closing", self._outbox.qsize())
        self._stopping = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await self._stop(task)
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.close()
            except Exception as exc:
                log.debug("event bus: closing the Redis client: %s", exc)
        self._listening = False
        await self._local.close()

    async def publish(self, event: Event) -> None:
        """Deliver to this process's subscribers now, and queue the event for Redis. Never raises
        for Redis and never waits on it: the store already holds the event."""
        await self._local.publish(event)
        try:
            payload = encode_event(event, self.origin)
        except (TypeError, ValueError):
            log.exception("event bus: event %s cannot be sent to other instances (not JSON)", event.id)
            return
        if self._outbox is None:
            self._outbox = asyncio.Queue(maxsize=self._max_outbox)
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            # Redis has been unreachable for a while; dropping keeps memory bounded. The store has
            # the event: other instances get it on their resync (if Redis itself went away) or
            # when a later event shows them the gap in ids.
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning(
                    "event bus: outbox full (%d); %d events not sent to other instances so far",
                    self._max_outbox, self._dropped,
                )

    def subscribe(self) -> MemorySubscription:
        return self._local.subscribe()

    @staticmethod
    async def _stop(task: "asyncio.Task[None]", patience_s: float = 5.0) -> None:
        # redis-py 4.6 loses a cancellation that lands inside a command at the wrong moment (the
        # command then returns normally). So the loops also check ``_stopping``, and the task is
        # cancelled again until it has ended.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience_s
        while not task.done():
            if loop.time() > deadline:
                log.error("event bus: task %s does not stop; leaving it", task.get_name())
                return
            task.cancel()
            await asyncio.wait([task], timeout=0.1)
        if not task.cancelled() and task.exception() is not None:  # the loops catch everything
            log.error("event bus task %s failed", task.get_name(), exc_info=task.exception())

    # -- listener ---------------------------------------------------------------------------------
    async def _listen_forever(self) -> None:
        assert self._client is not None and self._first_attempt is not None
        low, high = self._backoff
        delay = low
        owes_resync = False  # set once the listener has been deaf while the bus was open
        failures = 0
        while not self._stopping:
            pubsub = self._client.pubsub()
            try:
                await self._subscribe(pubsub)
                if self._stopping:
                    return
                self._listening = True
                if owes_resync:
                    # Pub/sub dropped whatever was published while we were deaf; the subscription
                    # is confirmed before this, so nothing falls between the resync and live events.
                    await self._local.publish(resync_event())
                    owes_resync = False
                    log.info(
                        "event bus: listening on %s at %s again after %d failed attempt(s); subscribers resync",
                        self.channel, self._where, failures,
                    )
                else:
                    log.info("event bus: listening on %s at %s (origin %s)", self.channel, self._where, self.origin)
                failures = 0
                delay = low
                self._first_attempt.set()
                await self._pump(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                owes_resync = True
                failures += 1
                self._first_attempt.set()
                # The first failure of an outage is worth a warning; the retries are not.
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "event bus: Redis at %s unavailable (%s: %s); retrying with backoff up to %.1f s",
                        self._where, type(exc).__name__, exc, high)
            finally:
                self._listening = False
                await self._discard(pubsub)
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, high)

    async def _subscribe(self, pubsub: PubSub) -> None:
        """Subscribe and wait for Redis to confirm: only then are publishes of others delivered."""
        await pubsub.subscribe(self.channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConnectionError(f"Redis did not confirm the subscription within {self._connect_timeout} s")
            msg = await pubsub.get_message(timeout=remaining)
            if msg is not None and msg.get("type") == "subscribe":
                return

    async def _pump(self, pubsub: PubSub) -> None:
        """Read until the connection fails (raises) or the bus closes (returns). A quiet connection
        is PINGed, and one that does not answer counts as dead: a frozen server or a silent network
        partition sends no RST."""
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        ping_sent: Optional[float] = None
        poll = min(1.0, self._ping_interval, self._ping_timeout)
        while not self._stopping:
            msg: Optional[dict[str, Any]] = await pubsub.get_message(timeout=poll)
            now = loop.time()
            if msg is not None:
                last_heard, ping_sent = now, None
                if msg.get("type") == "message":
                    await self._deliver(msg.get("data"))
                continue
            if ping_sent is not None:
                if now - ping_sent > self._ping_timeout:
                    raise ConnectionError(f"Redis did not answer PING within {self._ping_timeout} s")
            elif now - last_heard >= self._ping_interval:
                await pubsub.ping()
                ping_sent = now

    async def _deliver(self, raw: Any) -> None:
        try:
            origin, event = decode_event(raw)
        except (ValueError, TypeError) as exc:
            log.warning("event bus: ignoring a malformed message on %s: %s", self.channel, exc)
            return
        if origin == self.origin:
            return  # our own echo: local subscribers had it when it was published
        try:
            await self._local.publish(event)
        except Exception:
            log.exception("event bus: could not hand event %s to local subscribers", event.id)

    @staticmethod
    async def _discard(pubsub: PubSub) -> None:
        try:
            await pubsub.close()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("event bus: closing a dead subscription: %s", exc)

    # -- sender -----------------------------------------------------------------------------------
    async def _send_forever(self) -> None:
        assert self._client is not None and self._outbox is not None
        low, high = self._backoff
        delay = low
        failing = False
        while not self._stopping:
            payload = await self._outbox.get()
            try:
                while not self._stopping:  # the same payload until it is out: per-instance order is kept
                    try:
                        await self._client.publish(self.channel, payload)
                        break
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        if not failing:
                            log.warning("event bus: cannot publish to Redis at %s (%s: %s); queueing (%d waiting)",
                                        self._where, type(exc).__name__, exc, self._outbox.qsize() + 1)
                        failing = True
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, high)
                if failing:
                    log.info("event bus: publishing to Redis at %s again (%d events dropped meanwhile)",
                             self._where, self._dropped)
                    self._dropped = 0
                failing, delay = False, low
            finally:
                self._outbox.task_done()
