"""Visitor sockets: the rasa-webchat socket.io protocol, and the relay that delivers what bot,
agents and system say to the visitor's room.

A visitor turn is acknowledged only once it is stored. Messages sent while the visitor was away
are replayed when their widget asks for the session again (``session_request``)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import deque
from typing import Any, Optional

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from ..bus import RESYNC, EventBus
from ..errors import BackendUnavailable, HandoffError, InvalidPayload, MessageTooLong
from ..models import Event, Message, now
from ..rasa_pipe import RasaClient
from ..service import HandoffService
from ..store import ConversationStore
from ..webchat import to_widget
from .outage import StoreOutage

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")
BOT_EVENT = "bot_uttered"
# On the bus (never in the feed): a visitor socket died with messages it may not have received;
# every gateway re-sends them to that conversation's sockets that did not get them.
REWIND = "visitor_rewind"


class VisitorSockets:
    def __init__(
        self, sio: socketio.AsyncServer, service: HandoffService, store: ConversationStore, bus: EventBus,
        rasa: RasaClient,
    ) -> None:
        self.sio = sio
        self.service = service
        self.store = store
        self.bus = bus
        self._session_of: dict[str, str] = {}  # socket id -> conversation id
        self._emitted: dict[str, int] = {}  # conversation id -> last seq sent to its room
        self._replaying: set[str] = set()
        self._missed_during_replay: set[str] = set()
        self._dirty: set[str] = set()  # delivered seqs not yet persisted
        # A socket that stops answering is only found dead when its ping times out (ping interval
        # + timeout later); what it was sent meanwhile may be lost. So each socket remembers what
        # it was sent lately, and from which seq it has had everything (its replay's start).
        self._sent: dict[str, deque[tuple[float, int]]] = {}  # socket id -> (time.time(), seq)
        self._has_from: dict[str, int] = {}  # socket id -> it was sent every message after this seq
        # A rewind must land after a flush of delivery marks already on its way to the store.
        self._marks = asyncio.Lock()
        self._ping_interval = float(getattr(sio.eio, "ping_interval", 25))
        self._keep_sent_s = 2 * (self._ping_interval + float(getattr(sio.eio, "ping_timeout", 20))) + 5
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.outage = StoreOutage(service, store, rasa, self._emit_now, self._mark_emitted)
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        sio.on("session_request", self.on_session_request)
        sio.on("user_uttered", self.on_user_uttered)

    async def start(self) -> None:
        self._subscription = self.bus.subscribe()
        self._tasks = [
            asyncio.create_task(self._relay(), name="visitor-relay"),
            asyncio.create_task(self._flush_delivered(), name="visitor-delivered"),
        ]
        await self.outage.start()

    async def close(self) -> None:
        self._closing = True
        await self.outage.close()
        await self._subscription.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        await self._persist_delivered()

    @property
    def connected(self) -> int:
        """Visitor sockets bound to a session on this instance."""
        return len(self._session_of)

    # -- socket.io handlers ----------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        return None

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conversation_id = self._session_of.pop(sid, None)
        sent = self._sent.pop(sid, None)
        self._has_from.pop(sid, None)
        if conversation_id is None or not sent or not self._died(reason):
            return
        # Found dead, not closed by its page: what it was sent since it last proved alive may
        # never have arrived. Deliver it again to this visitor's other sockets (here or on other
        # gateways), and to the next one they open.
        cutoff = self._last_alive(sid)
        unsure = [seq for t, seq in sent if t >= cutoff]
        if not unsure:
            return
        seq = min(unsure) - 1
        log.info("visitor socket of %s died (%s); messages after seq %d are sent again", conversation_id, reason, seq)
        if not self._has_listeners(conversation_id):
            self._dirty.discard(conversation_id)
            if self._emitted.get(conversation_id, 0) > seq:
                self._emitted[conversation_id] = seq
        task = asyncio.create_task(self._rewind(conversation_id, seq))
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    def _last_alive(self, sid: str) -> float:
        """When the socket last proved it had read everything sent to it: engine.io sends the ping
        that went unanswered ``ping_interval`` after the client's last pong, and the client had
        read everything sent before the ping it answered. No ping pending: its last pong came
        less than a ping interval ago."""
        interval = self._ping_interval
        try:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            last_ping = getattr(self.sio.eio.sockets.get(eio_sid), "last_ping", None)
        except Exception:
            last_ping = None
        if isinstance(last_ping, (int, float)) and last_ping:
            return float(last_ping) - interval - 1.0
        return time.time() - interval - 1.0

    def _died(self, reason: Any) -> bool:
        known = getattr(self.sio, "reason", None)
        if known is None or reason is None:
            return False  # a python-socketio that does not say why: as before, trust the send
        return reason in (known.PING_TIMEOUT, known.TRANSPORT_ERROR)

    async def _rewind(self, conversation_id: str, seq: int) -> None:
        try:
            async with self._marks:
                await self.store.rewind_delivered(conversation_id, seq)
        except HandoffError as exc:  # the store is down: the bus still reaches the live sockets
            log.warning("could not lower the delivery mark of %s: %s", conversation_id, exc)
        await self.bus.publish(Event(id=0, type=REWIND, conversation_id=conversation_id, data={"seq": seq},
                                     created_at=now()))

    def _has_listeners(self, conversation_id: str) -> bool:
        rooms = self.sio.manager.rooms.get("/", {})
        return bool(rooms.get(conversation_id))

    async def on_session_request(self, sid: str, data: Any) -> None:
        requested = data.get("session_id") if isinstance(data, dict) else None
        session_id = requested if isinstance(requested, str) and SESSION_ID.match(requested) else uuid.uuid4().hex
        previous = self._session_of.get(sid)
        if previous and previous != session_id:
            await self.sio.leave_room(sid, previous)
        self._session_of[sid] = session_id
        self._has_from.pop(sid, None)
        await self.sio.enter_room(sid, session_id)
        await self.sio.emit("session_confirm", session_id, room=sid)
        try:
            conv = await self.service.visitor_connected(session_id)
            self.outage.note_status(session_id, conv.status.value)
            self._has_from[sid] = await self._replay(session_id, conv.visitor_delivered_seq)
        except HandoffError as exc:
            # The store is down: the visitor stays connected; the replay happens on the next
            # reconnect. Nothing is lost, it is just not re-sent now.
            log.warning("could not replay for %s: %s", session_id, exc)

    async def on_user_uttered(self, sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            return InvalidPayload("Expected an object with a 'message'.").as_dict() | {"ok": False}
        session_id = self._session_of.get(sid)
        claimed = data.get("session_id")
        if session_id is None:
            # A client that skipped session_request: bind it now to the session it names.
            if not (isinstance(claimed, str) and SESSION_ID.match(claimed)):
                return {"ok": False, **InvalidPayload("Send session_request first.").as_dict()}
            await self.on_session_request(sid, {"session_id": claimed})
            session_id = claimed
        elif claimed and claimed != session_id:
            return {"ok": False, **InvalidPayload("This socket belongs to another session.").as_dict()}
        text = data.get("message")
        if text is None or (isinstance(text, str) and not text.strip()):
            return {"ok": False, **InvalidPayload("Empty message ignored.").as_dict()}
        custom = data.get("customData")
        metadata = {"customData": custom} if isinstance(custom, dict) and custom else None
        client_id = data.get("message_id") or data.get("client_id")
        try:
            msg = await self.service.visitor_message(
                session_id, text, client_id=str(client_id)[:128] if client_id else None, metadata=metadata
            )
        except MessageTooLong as exc:
            await self.sio.emit(
                BOT_EVENT,
                {"text": f"Sorry, that message is too long ({exc.detail['length']} characters; the limit is "
                         f"{exc.detail['limit']}). Please shorten it and send it again."},
                room=sid,
            )
            return {"ok": False, **exc.as_dict()}
        except BackendUnavailable:
            # The store is down: keep bot-owned visitors answered, journal everything.
            return await self.outage.visitor_turn(session_id, text, metadata)
        except HandoffError as exc:
            if exc.status >= 500:
                await self.sio.emit(
                    BOT_EVENT,
                    {"text": "Sorry, we could not receive that message just now. Please send it again in a moment."},
                    room=sid,
                )
            return {"ok": False, **exc.as_dict()}
        return {"ok": True, "id": msg.id, "seq": msg.seq}

    # -- delivery ---------------------------------------------------------------------------------
    async def _emit_now(self, conversation_id: str, payload: dict[str, Any]) -> None:
        await self._send_to_room(conversation_id, BOT_EVENT, payload)

    async def _send_to_room(self, room: str, event: str, payload: Any, seq: Optional[int] = None) -> None:
        """``sio.emit(event, payload, room=room)`` without its task per recipient. python-socketio's
        emit starts a task for every socket in the room and waits for them all: two trips through
        the event loop's queue per message, and the relay, which sends every visitor's messages
        one after the other, waited them out each time. Here the packet is encoded once and put on
        each socket's engine.io send queue in order, without waiting."""
        pkt = self.sio.packet_class(sio_packet.EVENT, namespace="/", data=[event, payload])
        encoded = pkt.encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        eio_packets = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in parts]
        sent_at = time.time()
        for sid, eio_sid in self.sio.manager.get_participants("/", room):
            try:
                for p in eio_packets:
                    await self.sio.eio.send_packet(eio_sid, p)
            except Exception as exc:  # a socket closing meanwhile; its visitor gets a replay on reconnect
                log.debug("could not send to %s: %s", eio_sid, exc)
            if seq is not None:
                self._note_sent(sid, sent_at, seq)

    def _note_sent(self, sid: str, sent_at: float, seq: int) -> None:
        recent = self._sent.get(sid)
        if recent is None:
            if sid not in self._session_of:
                return  # disconnected meanwhile
            recent = self._sent[sid] = deque()
        recent.append((sent_at, seq))
        while recent and recent[0][0] < sent_at - self._keep_sent_s:
            recent.popleft()

    def _mark_emitted(self, conversation_id: str, seq: int) -> None:
        self._emitted[conversation_id] = max(seq, self._emitted.get(conversation_id, 0))

    async def _emit(self, msg: Message) -> None:
        payload = to_widget(msg)
        if payload is None or msg.seq <= self._emitted.get(msg.conversation_id, 0):
            return
        self._emitted[msg.conversation_id] = msg.seq
        await self._send_to_room(msg.conversation_id, BOT_EVENT, payload, seq=msg.seq)
        self._dirty.add(msg.conversation_id)

    async def _replay(self, conversation_id: str, delivered_seq: int) -> int:
        """Send the room what the store has after ``delivered_seq`` (or after what this gateway sent
        it already). Returns the seq it started after."""
        self._replaying.add(conversation_id)
        try:
            start = max(delivered_seq, self._emitted.get(conversation_id, 0))
            self._emitted[conversation_id] = start
            while True:
                self._missed_during_replay.discard(conversation_id)
                for msg in await self.store.messages(conversation_id, after_seq=self._emitted[conversation_id]):
                    if msg.role.visible_to_visitor:
                        await self._emit(msg)
                    else:
                        self._emitted[conversation_id] = max(self._emitted[conversation_id], msg.seq)
                if conversation_id not in self._missed_during_replay:
                    break
        finally:
            self._replaying.discard(conversation_id)
        return start

    async def _resend(self, conversation_id: str, seq: int) -> None:
        """A socket of this visitor died (here or on another gateway) with the messages after
        ``seq`` perhaps unread: send them to each socket here that joined after they went out."""
        behind = {sid: self._has_from[sid] for sid, _eio in self.sio.manager.get_participants("/", conversation_id)
                  if self._has_from.get(sid, 0) > seq}
        if not behind:
            return
        missed = [m for m in await self.store.messages(conversation_id, after_seq=seq) if m.role.visible_to_visitor]
        for sid, has_from in behind.items():
            for msg in missed:
                payload = to_widget(msg)
                if msg.seq <= has_from and payload is not None:
                    await self._send_to_room(sid, BOT_EVENT, payload, seq=msg.seq)
            if sid in self._has_from:
                self._has_from[sid] = seq

    async def _resync(self) -> None:
        """Events may have been missed: re-send from the store to every connected visitor."""
        for cid in set(self._session_of.values()):
            conv = await self.store.get_conversation(cid)
            self.outage.note_status(cid, conv.status.value)
            await self._replay(cid, conv.visitor_delivered_seq)

    async def _relay(self) -> None:
        while not self._closing:
            async for event in self._subscription:
                try:
                    await self._relay_one(event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("relay failed for event %s", event.id)
            if self._closing:
                return
            # The bus dropped us for falling behind: subscribe again and catch up from the store.
            log.warning("visitor relay fell behind the bus; catching up from the store")
            self._subscription = self.bus.subscribe()
            try:
                await self._resync()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("catch-up after falling behind failed: %s", exc)

    async def _relay_one(self, event: Event) -> None:
        if event.type == RESYNC:
            await self._resync()
            return
        if event.type == REWIND:
            await self._resend(event.conversation_id, int(event.data.get("seq") or 0))
            return
        conv = event.data.get("conversation")
        if isinstance(conv, dict) and conv.get("status"):
            self.outage.note_status(event.conversation_id, conv["status"])
        if event.type != "message_created":
            return
        msg = Message.from_dict(event.data["message"])
        cid = msg.conversation_id
        if cid in self._replaying:
            self._missed_during_replay.add(cid)
            return
        if not self._has_listeners(cid):
            return
        last = self._emitted.get(cid, 0)
        if msg.seq <= last:
            return  # already sent (a replay, or the same event twice from the bus)
        if msg.seq > last + 1:
            # An earlier message has not reached this instance yet (events of other instances
            # come later through the bus): send from the store, in order, instead of skipping it.
            conv_row = await self.store.get_conversation(cid)
            await self._replay(cid, max(last, conv_row.visitor_delivered_seq))
            return
        if msg.role.visible_to_visitor:
            await self._emit(msg)
        else:
            self._emitted[cid] = msg.seq

    async def _persist_delivered(self) -> None:
        async with self._marks:
            dirty, self._dirty = self._dirty, set()
            try:
                await self.store.mark_delivered_many({cid: self._emitted[cid] for cid in dirty})
            except Exception:
                self._dirty |= dirty
                raise

    async def _flush_delivered(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await self._persist_delivered()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not persist delivery marks: %s", exc)
