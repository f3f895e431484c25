"""SQL adapter of the conversation store (SQLAlchemy 1.4 Core). SQLite file by default,
PostgreSQL in production; the schema is the same. PostgreSQL calls run on a pool of worker threads,
so a slow database never blocks the event loop; SQLite transactions (local, a few hundred
microseconds) run on the loop itself, one at a time, as SQLite allows one writer anyway.

Each use case is one transaction: a message, its feed event and its Rasa outbox item are written
together, so a crash never leaves a message the inbox saw but Rasa will never log, or vice versa."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ..errors import (
    AlreadyAssigned,
    BackendUnavailable,
    Conflict,
    ConversationNotFound,
    InvalidTransition,
    NotAssignee,
    NotFound,
    TicketAlreadyDone,
)
from ..models import (
    Agent,
    Availability,
    CannedResponse,
    Conversation,
    Event,
    Handoff,
    LastMessage,
    Message,
    Move,
    OutboxItem,
    OutboxKind,
    Role,
    Status,
    Ticket,
    TimelineEntry,
    now,
    target_of,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
schema = sa.MetaData()

conversations = sa.Table(
    "handoff_conversations",
    schema,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("assignee", sa.String(64), nullable=True, index=True),
    sa.Column("assignee_name", sa.String(128), nullable=True),
    sa.Column("priority", sa.Integer, nullable=True),
    sa.Column("handoff", sa.Text, nullable=True),
    sa.Column("queued_at", sa.Float, nullable=True),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False, default=0),
    sa.Column("visitor_delivered_seq", sa.Integer, nullable=False, default=0),
    sa.Column("last_role", sa.String(16), nullable=True),
    sa.Column("last_text", sa.String(300), nullable=True),
    sa.Column("last_at", sa.Float, nullable=True),
)

messages = sa.Table(
    "handoff_messages",
    schema,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(128), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("author", sa.String(64), nullable=True),
    sa.Column("author_name", sa.String(128), nullable=True),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("meta", sa.Text, nullable=True),
    sa.Column("client_id", sa.String(128), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("conversation_id", "seq", name="uq_handoff_messages_seq"),
    sa.UniqueConstraint("conversation_id", "client_id", name="uq_handoff_messages_client_id"),
)

timeline = sa.Table(
    "handoff_timeline",
    schema,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=True),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
)

feed = sa.Table(
    "handoff_feed",
    schema,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(128), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

outbox = sa.Table(
    "handoff_rasa_outbox",
    schema,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Which gateway instance drains a conversation's outbox right now (several gateways share a store;
# each conversation's Rasa calls must stay in order, so one drainer at a time).
leases = sa.Table(
    "handoff_outbox_leases",
    schema,
    sa.Column("conversation_id", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

agents = sa.Table(
    "handoff_agents",
    schema,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("role", sa.String(16), nullable=False, default="agent"),
    sa.Column("availability", sa.String(16), nullable=False, default="away"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False, server_default="5"),
    sa.Column("teams", sa.String(256), nullable=False, server_default=""),
    sa.Column("last_seen_at", sa.Float, nullable=True),
)

canned = sa.Table(
    "handoff_canned_responses",
    schema,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("shortcut", sa.String(64), nullable=False, unique=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

sessions = sa.Table(
    "handoff_agent_sessions",
    schema,
    sa.Column("token_hash", sa.String(128), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

tickets = sa.Table(
    "handoff_tickets",
    schema,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("conversation_id", sa.String(128), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("issue", sa.Text, nullable=False),
    sa.Column("why", sa.String(32), nullable=False),
    sa.Column("handoff", sa.Text, nullable=True),
    sa.Column("visitor_label", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("closed_at", sa.Float, nullable=True),
    sa.Column("closed_by", sa.String(64), nullable=True),
    sa.Column("closed_by_name", sa.String(128), nullable=True),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
)


_FEED_LOCK = 7242_0002

# The statements of the per-message paths, built once: SQLAlchemy then only binds values. Building
# a select/update/insert with its values on every call (coercing each value into a bound
# parameter and computing the statement's cache key from them) cost more CPU than SQLite's work.
_b = sa.bindparam
_CONV = sa.select(conversations).where(conversations.c.id == _b("cid"))
_CONV_FOR_UPDATE = _CONV.with_for_update()
_CONV_AFTER_MESSAGE = conversations.update().where(conversations.c.id == _b("cid"))
_MESSAGE_BY_CLIENT_ID = sa.select(messages).where(
    messages.c.conversation_id == _b("cid"), messages.c.client_id == _b("client_id")
)
_INSERT_MESSAGE = messages.insert()
_INSERT_FEED = feed.insert()
# PostgreSQL: the feed lock and the insert in one statement (one round trip fewer while the lock
# is held). The id's nextval runs as the row is inserted, after the subquery took the lock.
_INSERT_FEED_LOCKED = feed.insert().from_select(
    ["conversation_id", "type", "data", "created_at"],
    sa.select(
        _b("conversation_id", type_=sa.String), _b("type", type_=sa.String), _b("data", type_=sa.Text),
        _b("created_at", type_=sa.Float),
    ).select_from(sa.select(sa.func.pg_advisory_xact_lock(_FEED_LOCK).label("locked")).subquery("feed_lock")),
).returning(feed.c.id)
# PostgreSQL: take or renew an outbox lease in one statement (no read, no savepoint): the row is
# written when it is new, ours, or expired; nothing comes back when someone else holds it.
_pg_lease = pg_insert(leases).values(conversation_id=_b("cid"), owner=_b("owner"), expires_at=_b("expires_at"))
_TAKE_LEASE = _pg_lease.on_conflict_do_update(
    index_elements=[leases.c.conversation_id],
    set_={"owner": _pg_lease.excluded.owner, "expires_at": _pg_lease.excluded.expires_at},
    where=sa.or_(leases.c.owner == _pg_lease.excluded.owner, leases.c.expires_at <= _b("now")),
).returning(leases.c.owner)
_INSERT_OUTBOX = outbox.insert()
_OUTBOX_OF = sa.select(outbox).where(outbox.c.conversation_id == _b("cid")).order_by(outbox.c.id)
_MESSAGES_BY_ID = sa.select(messages).where(messages.c.id.in_(_b("ids", expanding=True)))
_DELETE_OUTBOX = outbox.delete().where(outbox.c.id.in_(_b("ids", expanding=True)))
_MARK_DELIVERED = (
    conversations.update()
    .where(conversations.c.id == _b("cid"), conversations.c.visitor_delivered_seq < _b("seq"))
    .values(visitor_delivered_seq=_b("new_seq"))
)
_SESSION_AGENT = (
    sa.select(agents)
    .select_from(sessions.join(agents, sessions.c.username == agents.c.username))
    .where(sessions.c.token_hash == _b("token_hash"), sessions.c.expires_at > _b("now"))
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: Optional[str]) -> Any:
    return json.loads(text) if text else None


def _handoff(text: Optional[str]) -> Optional[Handoff]:
    data = _loads(text)
    if not data:
        return None
    return Handoff(
        reason=data.get("reason") or "unknown",
        priority=int(data.get("priority") or 2),
        team=data.get("team"),
        evidence=data.get("evidence") or {},
        summary=data.get("summary") or {},
    )


def _ticket(row: Row) -> Ticket:
    return Ticket(
        id=row.id, key=row.key, conversation_id=row.conversation_id, status=row.status,
        email=row.email, issue=row.issue, why=row.why, handoff=_handoff(row.handoff),
        visitor_label=row.visitor_label, created_at=row.created_at, closed_at=row.closed_at,
        closed_by=row.closed_by, closed_by_name=row.closed_by_name, note=row.note or "",
    )


def _conversation(row: Row) -> Conversation:
    handoff = _handoff(row.handoff)
    last = (
        LastMessage(Role(row.last_role), row.last_text or "", row.last_at or row.updated_at)
        if row.last_role
        else None
    )
    return Conversation(
        id=row.id,
        status=Status(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        assignee=row.assignee,
        assignee_name=row.assignee_name,
        handoff=handoff,
        queued_at=row.queued_at,
        metadata=_loads(row.metadata) or {},
        message_count=row.last_seq,
        last_message=last,
        visitor_delivered_seq=row.visitor_delivered_seq,
    )


def _message(row: Row) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        role=Role(row.role),
        text=row.text,
        created_at=row.created_at,
        author=row.author,
        author_name=row.author_name,
        payload=_loads(row.payload),
        meta=_loads(row.meta),
        client_id=row.client_id,
    )


def _timeline(row: Row) -> TimelineEntry:
    return TimelineEntry(
        id=row.id,
        conversation_id=row.conversation_id,
        kind=row.kind,
        from_status=Status(row.from_status) if row.from_status else None,
        to_status=Status(row.to_status) if row.to_status else None,
        actor=row.actor,
        detail=_loads(row.detail) or {},
        created_at=row.created_at,
    )


def _event(row: Row) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        conversation_id=row.conversation_id,
        data=_loads(row.data) or {},
        created_at=row.created_at,
    )


def _agent(row: Row) -> Agent:
    return Agent(
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        availability=Availability(row.availability),
        capacity=row.capacity,
        teams=_teams(row.teams),
        last_seen_at=row.last_seen_at,
    )


def _teams(text: Optional[str]) -> tuple[str, ...]:
    return tuple(t.strip().lower() for t in (text or "").split(",") if t.strip())


class _WalCheckpointer:
    """Copies SQLite's write-ahead log back into the database file every ``interval`` seconds on
    its own thread and connection (``wal_checkpoint(PASSIVE)``: it never blocks the writer, and the
    sqlite3 module lets go of the GIL while it copies and syncs). The store's own connection has
    automatic checkpoints off, so no commit on the event loop ever waits for a checkpoint's fsync.
    On ``stop`` it checkpoints once more and truncates the log."""

    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="handoff-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()

    def _loop(self) -> None:
        conn: Optional[sqlite3.Connection] = None
        failing = False
        while not self._stop.wait(self.interval):
            try:
                if conn is None:
                    conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                self._checkpoint(conn, "PASSIVE")
                if failing:
                    log.info("SQLite checkpoints work again")
                failing = False
            except sqlite3.Error as exc:  # the log only grows meanwhile; the next round tries again
                if not failing:
                    log.warning("SQLite checkpoint failed (the next one retries): %s", exc)
                failing = True
                if conn is not None:
                    conn.close()
                    conn = None
        try:
            conn = conn or sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._checkpoint(conn, "TRUNCATE")
        except sqlite3.Error as exc:
            log.warning("final SQLite checkpoint failed: %s", exc)
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=35)


class SqlConversationStore:
    """``ConversationStore`` on SQLAlchemy Core."""

    def __init__(
        self, url: str, *, pool_size: int = 8, clock: Callable[[], float] = now, checkpoint_interval_s: float = 1.0,
    ) -> None:
        self.url = url
        self.checkpoint_interval_s = checkpoint_interval_s  # SQLite: how often the WAL is copied back
        self._clock = clock  # timestamps of records; tests pass a fake clock
        self._sqlite = url.startswith("sqlite")
        self._pool_size = pool_size
        self._engine: Optional[Engine] = None
        self._executor: Optional[ThreadPoolExecutor] = None
        self._checkpointer: Optional[_WalCheckpointer] = None

    @property
    def shared(self) -> bool:
        """Whether several gateway processes may use this store at once (SQLite: one process)."""
        return not self._sqlite

    # -- lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._engine is not None:
            return
        checkpointer: Optional[_WalCheckpointer] = None
        if self._sqlite:
            # One pooled connection, used on the event loop: without a pool SQLAlchemy
            # opens a connection per transaction, re-runs the PRAGMAs and checkpoints the WAL on
            # every close (docs/benchmarks.md: that was most of the gateway's per-message cost).
            engine = sa.create_engine(
                self.url, future=True, connect_args={"check_same_thread": False, "timeout": 30},
                poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=0,
            )
            database = engine.url.database
            checkpointer = (
                _WalCheckpointer(database, self.checkpoint_interval_s) if database and database != ":memory:" and "mode=memory" not in self.url
                else None
            )

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                # WAL: readers never block the writer; NORMAL survives a process crash.
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                if checkpointer is not None:
                    # The WAL is copied back into the database by a thread (below), not by the
                    # commit that crosses 1000 pages: that commit ran on the event loop and
                    # waited for the checkpoint's fsync while every message waited behind it.
                    cur.execute("PRAGMA wal_autocheckpoint=0")
                cur.close()

            # No executor: SQLite runs on the event loop itself. A transaction is a few hundred
            # microseconds of local work (WAL, synchronous=NORMAL), less than handing it to a
            # thread costs. With a worker thread, every sqlite3 call that released the GIL had to
            # win it back from the busy event loop (up to the 5 ms switch interval each time), and
            # the one worker became the queue every message waited in (docs/benchmarks.md).
        else:
            engine = sa.create_engine(
                self.url, future=True, pool_size=self._pool_size, pool_pre_ping=True,
                max_overflow=4,
            )
            # PostgreSQL waits on the network, so it runs on a pool of threads.
            self._executor = ThreadPoolExecutor(max_workers=self._pool_size, thread_name_prefix="handoff-store")
        self._engine = engine
        from .migrate import upgrade

        await self._run(lambda: upgrade(engine))
        if checkpointer is not None:
            checkpointer.start()
            self._checkpointer = checkpointer

    async def close(self) -> None:
        if self._executor:
            self._executor.shutdown(wait=True)
        if self._engine:
            self._engine.dispose()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._engine = None
        self._executor = None
        self._checkpointer = None

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._engine is None:
            await self.open()
        try:
            if self._executor is None:
                return fn()  # SQLite: on the loop (see open)
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            log.warning("store unavailable: %s", exc)
            raise BackendUnavailable("The conversation store is unavailable; try again shortly.") from exc

    async def _tx(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            assert self._engine is not None
            with self._engine.begin() as conn:
                return fn(conn)
        return await self._run(run)

    # -- conversations -------------------------------------------------------------------------
    async def get_or_create_conversation(
        self, conversation_id: str, metadata: Optional[Mapping[str, Any]] = None
    ) -> Conversation:
        def run(c: Connection) -> Conversation:
            row = c.execute(_CONV, {"cid": conversation_id}).first()
            if row is not None:
                return _conversation(row)
            t = self._clock()
            try:
                with c.begin_nested():
                    c.execute(
                        conversations.insert().values(
                            id=conversation_id, status=Status.BOT.value, metadata=_dumps(dict(metadata or {})),
                            created_at=t, updated_at=t, last_seq=0, visitor_delivered_seq=0,
                        )
                    )
            except IntegrityError:
                pass  # created concurrently: read the winner's row
            row = c.execute(sa.select(conversations).where(conversations.c.id == conversation_id)).one()
            return _conversation(row)

        return await self._tx(run)

    async def update_metadata(self, conversation_id: str, metadata: Mapping[str, Any]) -> None:
        def run(c: Connection) -> None:
            c.execute(
                conversations.update().where(conversations.c.id == conversation_id)
                .values(metadata=_dumps(dict(metadata)))
            )
        await self._tx(run)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        def run(c: Connection) -> Conversation:
            row = c.execute(_CONV, {"cid": conversation_id}).first()
            if row is None:
                raise ConversationNotFound(conversation_id)
            return _conversation(row)

        return await self._tx(run)

    async def list_conversations(
        self, statuses: Optional[Iterable[Status]] = None, assignee: Optional[str] = None,
        limit: int = 200,
    ) -> list[Conversation]:
        def run(c: Connection) -> list[Conversation]:
            q = sa.select(conversations)
            if statuses is not None:
                q = q.where(conversations.c.status.in_([s.value for s in statuses]))
            if assignee is not None:
                q = q.where(conversations.c.assignee == assignee)
            q = q.order_by(conversations.c.updated_at.desc()).limit(limit)
            return [_conversation(r) for r in c.execute(q)]

        return await self._tx(run)

    async def messages(self, conversation_id: str, after_seq: int = 0) -> list[Message]:
        def run(c: Connection) -> list[Message]:
            q = (
                sa.select(messages)
                .where(messages.c.conversation_id == conversation_id, messages.c.seq > after_seq)
                .order_by(messages.c.seq)
            )
            return [_message(r) for r in c.execute(q)]

        return await self._tx(run)

    async def timeline(self, conversation_id: str) -> list[TimelineEntry]:
        def run(c: Connection) -> list[TimelineEntry]:
            q = sa.select(timeline).where(timeline.c.conversation_id == conversation_id).order_by(timeline.c.id)
            return [_timeline(r) for r in c.execute(q)]

        return await self._tx(run)

    # -- writes --------------------------------------------------------------------------------
    def _insert_message(
        self, c: Connection, conversation_id: str, role: Role, text: str, *,
        author: Optional[str], author_name: Optional[str], payload: Optional[Mapping[str, Any]],
        meta: Optional[Mapping[str, Any]], client_id: Optional[str], t: float,
        route: Optional[Callable[[Conversation], Optional[OutboxKind]]] = None,
    ) -> tuple[Message, Event]:
        before = c.execute(_CONV_FOR_UPDATE, {"cid": conversation_id}).first()
        if before is None:
            raise ConversationNotFound(conversation_id)
        conv_before = _conversation(before)
        # Decided under the row lock, so no status move can slip between the decision and the write.
        kind = route(conv_before) if route else None
        preview = {} if role is Role.NOTE else {
            "last_role": role.value, "last_text": text[:300], "last_at": t,
        }
        seq = before.last_seq + 1
        c.execute(_CONV_AFTER_MESSAGE, {"cid": conversation_id, "last_seq": seq, "updated_at": t, **preview})
        ins = c.execute(
            _INSERT_MESSAGE,
            {
                "conversation_id": conversation_id, "seq": seq, "role": role.value, "text": text,
                "author": author, "author_name": author_name,
                "payload": _dumps(dict(payload)) if payload else None,
                "meta": _dumps(dict(meta)) if meta else None,
                "client_id": client_id, "created_at": t,
            },
        )
        msg = Message(
            id=ins.inserted_primary_key[0], conversation_id=conversation_id, seq=seq, role=role,
            text=text, created_at=t, author=author, author_name=author_name,
            payload=dict(payload) if payload else None, meta=dict(meta) if meta else None,
            client_id=client_id,
        )
        # The row as just updated (locked, so nobody else changed it): no second read.
        conv_after = dataclasses.replace(
            conv_before, message_count=seq, updated_at=t,
            last_message=LastMessage(role, text[:300], t) if preview else conv_before.last_message,
        )
        if kind is not None:
            self._insert_outbox(c, conversation_id, (kind, {"message_id": msg.id}), t)
        # The feed row last: on PostgreSQL it takes the feed lock, held until the commit.
        event = self._insert_event(
            c, conversation_id, "message_created",
            {"message": msg.as_dict(), "conversation": conv_after.summary_dict()}, t,
        )
        return msg, event

    def _insert_event(
        self, c: Connection, conversation_id: str, type_: str, data: Mapping[str, Any], t: float
    ) -> Event:
        values = {"conversation_id": conversation_id, "type": type_, "data": _dumps(dict(data)), "created_at": t}
        if c.dialect.name == "postgresql":
            # Feed ids must become visible in id order, or a reader resuming "after id N" could
            # skip an id that commits late. One transaction at a time takes the next id and
            # commits (SQLite has a single writer anyway).
            event_id = c.execute(_INSERT_FEED_LOCKED, values).scalar_one()
        else:
            event_id = c.execute(_INSERT_FEED, values).inserted_primary_key[0]
        return Event(id=event_id, type=type_, conversation_id=conversation_id, data=data, created_at=t)

    def _insert_outbox(
        self, c: Connection, conversation_id: str, item: Optional[tuple[OutboxKind, Mapping[str, Any]]], t: float
    ) -> None:
        if item is None:
            return
        kind, payload = item
        c.execute(
            _INSERT_OUTBOX,
            {"conversation_id": conversation_id, "kind": kind.value, "payload": _dumps(dict(payload)),
             "attempts": 0, "created_at": t},
        )

    async def add_message(
        self,
        conversation_id: str,
        role: Role,
        text: str,
        *,
        author: Optional[str] = None,
        author_name: Optional[str] = None,
        payload: Optional[Mapping[str, Any]] = None,
        meta: Optional[Mapping[str, Any]] = None,
        client_id: Optional[str] = None,
        route: Optional[Callable[[Conversation], Optional[OutboxKind]]] = None,
    ) -> tuple[Message, Optional[Event]]:
        def existing(c: Connection) -> Optional[Message]:
            if not client_id:
                return None
            row = c.execute(_MESSAGE_BY_CLIENT_ID, {"cid": conversation_id, "client_id": client_id}).first()
            return _message(row) if row else None

        def run(c: Connection) -> tuple[Message, Optional[Event]]:
            found = existing(c)
            if found is not None:
                return found, None
            t = self._clock()
            return self._insert_message(
                c, conversation_id, role, text, author=author, author_name=author_name,
                payload=payload, meta=meta, client_id=client_id, t=t, route=route,
            )

        return await self._insert_once(run, existing)

    async def _insert_once(
        self, run: Callable[[Connection], tuple[R, Optional[Event]]], existing: Callable[[Connection], Optional[R]]
    ) -> tuple[R, Optional[Event]]:
        """Run an insert that a unique key makes idempotent. When a concurrent insert of the same
        key wins the race (IntegrityError), return the winner's record and no event."""
        try:
            return await self._tx(run)
        except IntegrityError as exc:
            lost = exc

        def again(c: Connection) -> tuple[R, Optional[Event]]:
            found = existing(c)
            if found is None:
                raise lost  # another constraint failed: not a race
            return found, None

        return await self._tx(again)

    async def get_message(self, message_id: int) -> Optional[Message]:
        def run(c: Connection) -> Optional[Message]:
            row = c.execute(sa.select(messages).where(messages.c.id == message_id)).first()
            return _message(row) if row else None
        return await self._tx(run)

    async def set_message_meta(self, message_id: int, meta: Mapping[str, Any]) -> Optional[Event]:
        """Attach what the bot learned about a message (intent, confidence, sentiment), and tell
        the inbox (a ``message_updated`` feed event). None if the message does not exist."""
        def run(c: Connection) -> Optional[Event]:
            c.execute(messages.update().where(messages.c.id == message_id).values(meta=_dumps(dict(meta))))
            row = c.execute(sa.select(messages).where(messages.c.id == message_id)).first()
            if row is None:
                return None
            msg = _message(row)
            return self._insert_event(c, msg.conversation_id, "message_updated", {"message": msg.as_dict()}, self._clock())
        return await self._tx(run)

    async def transition(
        self,
        conversation_id: str,
        move: Move,
        actor: str,
        *,
        actor_name: Optional[str] = None,
        detail: Optional[Mapping[str, Any]] = None,
        handoff: Optional[Handoff] = None,
        require_assignee: Optional[str] = None,
        outbox: Optional[tuple[OutboxKind, Mapping[str, Any]]] = None,
        system_text: Optional[str] = None,
        assign_to: Optional[tuple[str, str]] = None,
        team: Optional[str] = None,
    ) -> tuple[Conversation, TimelineEntry, list[Event]]:
        def run(c: Connection) -> tuple[Conversation, TimelineEntry, list[Event]]:
            row = c.execute(
                sa.select(conversations).where(conversations.c.id == conversation_id).with_for_update()
            ).first()
            if row is None:
                raise ConversationNotFound(conversation_id)
            current = Status(row.status)
            target = target_of(current, move)
            if target is None:
                if move is Move.CLAIMED and current is Status.ASSIGNED:
                    raise AlreadyAssigned(conversation_id, row.assignee, row.assignee_name)
                raise InvalidTransition(conversation_id, current.value, move.value)
            if require_assignee is not None and current is Status.ASSIGNED and row.assignee != require_assignee:
                raise NotAssignee(conversation_id, row.assignee, row.assignee_name)
            t = self._clock()
            values: dict[str, Any] = {"status": target.value, "updated_at": t}
            entry_detail = dict(detail or {})
            if move in (Move.CLAIMED, Move.TRANSFERRED, Move.ESCALATED):
                username, name = assign_to or (actor, actor_name or actor)
                values.update(assignee=username, assignee_name=name)
                if move is not Move.CLAIMED:
                    entry_detail.update(from_agent=row.assignee, to_agent=username, to_agent_name=name)
                elif row.queued_at is not None:
                    # How long the visitor waited: the expected wait told to later visitors.
                    entry_detail["waited_s"] = round(max(t - row.queued_at, 0.0), 3)
            elif move is Move.HANDOFF_REQUESTED:
                assert handoff is not None
                values.update(
                    handoff=_dumps(handoff.as_dict()), priority=handoff.priority, queued_at=t,
                    assignee=None, assignee_name=None,
                )
            elif move in (Move.RELEASED, Move.HANDED_BACK, Move.CANCELLED):
                values.update(assignee=None, assignee_name=None)
            elif move is Move.TEAM_TRANSFERRED:
                # Back in the queue for another team: a new wait starts when an agent lets go.
                handoff_data = dict(_loads(row.handoff) or {"reason": "transferred", "priority": 2})
                entry_detail.update(from_team=handoff_data.get("team"), team=team, from_agent=row.assignee)
                handoff_data["team"] = team
                values.update(assignee=None, assignee_name=None, handoff=_dumps(handoff_data))
                if current is Status.ASSIGNED or row.queued_at is None:
                    values["queued_at"] = t
            res = c.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id, conversations.c.status == current.value)
                .values(**values)
            )
            if res.rowcount != 1:  # lost a race on a database without row locks
                raise Conflict(f"Conversation {conversation_id!r} changed meanwhile; try again.")
            joined_name = assign_to[1] if assign_to else actor_name
            conv, entry, events = self._record_entry(
                c, conversation_id, move.value, current, target, actor, actor_name, entry_detail, t,
                system_text, {"handoff": {"status": target.value, "agent_name": joined_name}},
            )
            self._insert_outbox(c, conversation_id, outbox, t)
            return conv, entry, events

        return await self._tx(run)

    def _record_entry(
        self, c: Connection, conversation_id: str, kind: str, from_status: Status, to_status: Status,
        actor: str, actor_name: Optional[str], detail: dict[str, Any], t: float,
        system_text: Optional[str], system_payload: Optional[Mapping[str, Any]],
    ) -> tuple[Conversation, TimelineEntry, list[Event]]:
        """The timeline entry of a change, what the visitor is told about it, and the
        ``conversation_updated`` event with the conversation's new row."""
        if actor_name:
            detail.setdefault("actor_name", actor_name)
        ins = c.execute(
            timeline.insert().values(
                conversation_id=conversation_id, kind=kind, from_status=from_status.value,
                to_status=to_status.value, actor=actor, detail=_dumps(detail), created_at=t,
            )
        )
        entry = TimelineEntry(
            id=ins.inserted_primary_key[0], conversation_id=conversation_id, kind=kind,
            from_status=from_status, to_status=to_status, actor=actor, detail=detail, created_at=t,
        )
        events: list[Event] = []
        if system_text:
            # What the visitor is told ("Sarah joined the chat") is part of the record: it is
            # stored, relayed to the widget and logged into the tracker like any message.
            _msg, ev = self._insert_message(
                c, conversation_id, Role.SYSTEM, system_text, author=actor, author_name=actor_name,
                payload=system_payload, meta=None, client_id=None, t=t, route=lambda _conv: OutboxKind.LOG,
            )
            events.append(ev)
        conv = _conversation(c.execute(sa.select(conversations).where(conversations.c.id == conversation_id)).one())
        events.append(
            self._insert_event(
                c, conversation_id, "conversation_updated",
                {"conversation": conv.summary_dict(), "timeline": entry.as_dict()}, t,
            )
        )
        return conv, entry, events

    async def note_timeline(
        self,
        conversation_id: str,
        kind: str,
        actor: str,
        *,
        actor_name: Optional[str] = None,
        detail: Optional[Mapping[str, Any]] = None,
        require_status: Optional[Status] = None,
        once_per_queueing: bool = False,
        system_text: Optional[str] = None,
        system_payload: Optional[Mapping[str, Any]] = None,
    ) -> Optional[tuple[Conversation, TimelineEntry, list[Event]]]:
        def run(c: Connection) -> Optional[tuple[Conversation, TimelineEntry, list[Event]]]:
            row = c.execute(
                sa.select(conversations).where(conversations.c.id == conversation_id).with_for_update()
            ).first()
            if row is None:
                raise ConversationNotFound(conversation_id)
            status = Status(row.status)
            if require_status is not None and status is not require_status:
                return None
            if once_per_queueing and row.queued_at is not None:
                seen = c.execute(
                    sa.select(timeline.c.id).where(
                        timeline.c.conversation_id == conversation_id, timeline.c.kind == kind,
                        timeline.c.created_at >= row.queued_at,
                    ).limit(1)
                ).first()
                if seen is not None:
                    return None
            return self._record_entry(
                c, conversation_id, kind, status, status, actor, actor_name, dict(detail or {}),
                self._clock(), system_text, system_payload,
            )

        return await self._tx(run)

    async def unclaimed_conversations(self, queued_before: float, kind: str) -> list[Conversation]:
        def run(c: Connection) -> list[Conversation]:
            offered = sa.select(timeline.c.id).where(
                timeline.c.conversation_id == conversations.c.id, timeline.c.kind == kind,
                timeline.c.created_at >= conversations.c.queued_at,
            ).exists()
            q = sa.select(conversations).where(
                conversations.c.status == Status.QUEUED.value,
                conversations.c.queued_at <= queued_before,
                ~offered,
            ).order_by(conversations.c.queued_at).limit(500)
            return [_conversation(r) for r in c.execute(q)]

        return await self._tx(run)

    # -- offline tickets -----------------------------------------------------------------------
    async def add_ticket(
        self, conversation_id: str, key: str, *, email: str, issue: str, why: str,
        handoff: Optional[Handoff],
    ) -> tuple[Ticket, Optional[Event]]:
        def existing(c: Connection) -> Optional[Ticket]:
            row = c.execute(sa.select(tickets).where(tickets.c.key == key)).first()
            return _ticket(row) if row else None

        def run(c: Connection) -> tuple[Ticket, Optional[Event]]:
            found = existing(c)
            if found is not None:
                return found, None
            conv_row = c.execute(sa.select(conversations).where(conversations.c.id == conversation_id)).first()
            if conv_row is None:
                raise ConversationNotFound(conversation_id)
            t = self._clock()
            label = _conversation(conv_row).visitor_label
            ins = c.execute(
                tickets.insert().values(
                    key=key, conversation_id=conversation_id, status="open", email=email, issue=issue,
                    why=why, handoff=_dumps(handoff.as_dict()) if handoff else None, visitor_label=label,
                    created_at=t, note="",
                )
            )
            ticket = Ticket(
                id=ins.inserted_primary_key[0], key=key, conversation_id=conversation_id, status="open",
                email=email, issue=issue, why=why, handoff=handoff, visitor_label=label, created_at=t,
            )
            c.execute(
                timeline.insert().values(
                    conversation_id=conversation_id, kind="ticket_created", from_status=conv_row.status,
                    to_status=conv_row.status, actor="visitor",
                    detail=_dumps({"ticket_id": ticket.id, "email": email, "why": why}), created_at=t,
                )
            )
            return ticket, self._insert_event(c, conversation_id, "ticket_created", {"ticket": ticket.as_dict()}, t)

        return await self._insert_once(run, existing)

    async def tickets(self, status: Optional[str] = None, limit: int = 200) -> list[Ticket]:
        def run(c: Connection) -> list[Ticket]:
            q = sa.select(tickets)
            if status is not None:
                q = q.where(tickets.c.status == status)
            return [_ticket(r) for r in c.execute(q.order_by(tickets.c.id.desc()).limit(limit))]

        return await self._tx(run)

    async def close_ticket(
        self, ticket_id: int, actor: str, actor_name: str, note: str = ""
    ) -> tuple[Ticket, Event]:
        def run(c: Connection) -> tuple[Ticket, Event]:
            row = c.execute(sa.select(tickets).where(tickets.c.id == ticket_id).with_for_update()).first()
            if row is None:
                raise NotFound(f"No ticket {ticket_id}.")
            if row.status == "done":
                raise TicketAlreadyDone(
                    f"Ticket {ticket_id} was already marked done by {row.closed_by_name or row.closed_by}.",
                    closed_by=row.closed_by, closed_by_name=row.closed_by_name,
                )
            t = self._clock()
            c.execute(
                tickets.update().where(tickets.c.id == ticket_id, tickets.c.status == "open")
                .values(status="done", closed_at=t, closed_by=actor, closed_by_name=actor_name, note=note)
            )
            ticket = _ticket(c.execute(sa.select(tickets).where(tickets.c.id == ticket_id)).one())
            return ticket, self._insert_event(c, ticket.conversation_id, "ticket_updated", {"ticket": ticket.as_dict()}, t)

        return await self._tx(run)

    async def mark_delivered(self, conversation_id: str, seq: int) -> None:
        def run(c: Connection) -> None:
            c.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id, conversations.c.visitor_delivered_seq < seq)
                .values(visitor_delivered_seq=seq)
            )
        await self._tx(run)

    async def mark_delivered_many(self, marks: Mapping[str, int]) -> None:
        """``mark_delivered`` for several conversations in one transaction."""
        def run(c: Connection) -> None:
            c.execute(_MARK_DELIVERED, [{"cid": cid, "seq": seq, "new_seq": seq} for cid, seq in marks.items()])
        if marks:
            await self._tx(run)

    async def rewind_delivered(self, conversation_id: str, seq: int) -> None:
        def run(c: Connection) -> None:
            c.execute(
                conversations.update()
                .where(conversations.c.id == conversation_id, conversations.c.visitor_delivered_seq > seq)
                .values(visitor_delivered_seq=seq)
            )
        await self._tx(run)

    # -- feed ----------------------------------------------------------------------------------
    async def events_after(self, last_id: int, limit: int = 500) -> list[Event]:
        def run(c: Connection) -> list[Event]:
            q = sa.select(feed).where(feed.c.id > last_id).order_by(feed.c.id).limit(limit)
            return [_event(r) for r in c.execute(q)]
        return await self._tx(run)

    async def last_event_id(self) -> int:
        def run(c: Connection) -> int:
            return int(c.execute(sa.select(sa.func.coalesce(sa.func.max(feed.c.id), 0))).scalar_one())
        return await self._tx(run)

    # -- outbox --------------------------------------------------------------------------------
    async def pending_outbox(self, conversation_id: str) -> list[OutboxItem]:
        def run(c: Connection) -> list[OutboxItem]:
            q = sa.select(outbox).where(outbox.c.conversation_id == conversation_id).order_by(outbox.c.id)
            return [
                OutboxItem(
                    id=r.id, conversation_id=r.conversation_id, kind=OutboxKind(r.kind),
                    payload=_loads(r.payload) or {}, created_at=r.created_at, attempts=r.attempts,
                )
                for r in c.execute(q)
            ]
        return await self._tx(run)

    async def outbox_work(
        self, conversation_id: str
    ) -> tuple[Optional[Conversation], list[OutboxItem], dict[int, Message]]:
        """The conversation (None if it is gone), its pending outbox items in order and the messages
        they name, read together: one transaction per batch the Rasa pipe sends."""
        def run(c: Connection) -> tuple[Optional[Conversation], list[OutboxItem], dict[int, Message]]:
            items = [
                OutboxItem(
                    id=r.id, conversation_id=r.conversation_id, kind=OutboxKind(r.kind),
                    payload=_loads(r.payload) or {}, created_at=r.created_at, attempts=r.attempts,
                )
                for r in c.execute(_OUTBOX_OF, {"cid": conversation_id})
            ]
            if not items:
                return None, [], {}
            row = c.execute(_CONV, {"cid": conversation_id}).first()
            ids = sorted({int(i.payload["message_id"]) for i in items if isinstance(i.payload.get("message_id"), int)})
            found = {r.id: _message(r) for r in c.execute(_MESSAGES_BY_ID, {"ids": ids})} if ids else {}
            return (_conversation(row) if row is not None else None), items, found
        return await self._tx(run)

    async def conversations_with_pending_outbox(self, exclude_leased_at: Optional[float] = None) -> list[str]:
        """Conversations with outbox items, oldest first; with ``exclude_leased_at``, only those no
        instance holds a live lease on at that time."""
        def run(c: Connection) -> list[str]:
            q = sa.select(outbox.c.conversation_id).group_by(outbox.c.conversation_id).order_by(sa.func.min(outbox.c.id))
            if exclude_leased_at is not None:
                live = sa.select(leases.c.conversation_id).where(leases.c.expires_at > exclude_leased_at)
                q = q.where(outbox.c.conversation_id.not_in(live))
            return [r[0] for r in c.execute(q)]
        return await self._tx(run)

    async def acquire_lease(self, conversation_id: str, owner: str, ttl_s: float) -> bool:
        """Take (or renew) the right to drain a conversation's outbox. False if another owner
        holds a live lease."""
        def run(c: Connection) -> bool:
            t = self._clock()
            if c.dialect.name == "postgresql":
                taken = c.execute(
                    _TAKE_LEASE, {"cid": conversation_id, "owner": owner, "expires_at": t + ttl_s, "now": t}
                ).first()
                return taken is not None
            row = c.execute(
                sa.select(leases).where(leases.c.conversation_id == conversation_id).with_for_update()
            ).first()
            if row is None:
                try:
                    with c.begin_nested():
                        c.execute(leases.insert().values(conversation_id=conversation_id, owner=owner, expires_at=t + ttl_s))
                    return True
                except IntegrityError:
                    return False  # another instance inserted it first
            if row.owner != owner and row.expires_at > t:
                return False
            c.execute(
                leases.update().where(leases.c.conversation_id == conversation_id)
                .values(owner=owner, expires_at=t + ttl_s)
            )
            return True
        return await self._tx(run)

    async def release_lease(self, conversation_id: str, owner: str) -> None:
        def run(c: Connection) -> None:
            c.execute(leases.delete().where(leases.c.conversation_id == conversation_id, leases.c.owner == owner))
        await self._tx(run)

    async def finish_outbox(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        def run(c: Connection) -> None:
            c.execute(_DELETE_OUTBOX, {"ids": list(item_ids)})
        await self._tx(run)

    async def bump_outbox_attempts(self, item_ids: Sequence[int]) -> None:
        if not item_ids:
            return
        def run(c: Connection) -> None:
            c.execute(outbox.update().where(outbox.c.id.in_(list(item_ids))).values(attempts=outbox.c.attempts + 1))
        await self._tx(run)

    # -- agents --------------------------------------------------------------------------------
    async def create_agent(
        self, username: str, display_name: str, password_hash: str, role: str = "agent",
        *, capacity: int = 5, teams: Sequence[str] = (),
    ) -> Agent:
        def run(c: Connection) -> Agent:
            c.execute(
                agents.insert().values(
                    username=username, display_name=display_name, password_hash=password_hash,
                    role=role, availability=Availability.AWAY.value, created_at=self._clock(),
                    capacity=capacity, teams=",".join(teams),
                )
            )
            return Agent(username, display_name, role, Availability.AWAY, capacity, _teams(",".join(teams)))
        try:
            return await self._tx(run)
        except IntegrityError as exc:
            raise Conflict(f"An agent named {username!r} already exists.") from exc

    async def set_password(self, username: str, password_hash: str) -> None:
        def run(c: Connection) -> None:
            res = c.execute(agents.update().where(agents.c.username == username).values(password_hash=password_hash))
            if res.rowcount == 0:
                raise NotFound(f"No agent {username!r}.")
        await self._tx(run)

    async def agent_credentials(self, username: str) -> Optional[tuple[Agent, str]]:
        def run(c: Connection) -> Optional[tuple[Agent, str]]:
            row = c.execute(sa.select(agents).where(agents.c.username == username)).first()
            return (_agent(row), row.password_hash) if row else None
        return await self._tx(run)

    async def get_agent(self, username: str) -> Optional[Agent]:
        def run(c: Connection) -> Optional[Agent]:
            row = c.execute(sa.select(agents).where(agents.c.username == username)).first()
            return _agent(row) if row else None
        return await self._tx(run)

    async def list_agents(self) -> list[Agent]:
        def run(c: Connection) -> list[Agent]:
            return [_agent(r) for r in c.execute(sa.select(agents).order_by(agents.c.username))]
        return await self._tx(run)

    async def set_availability(self, username: str, availability: Availability) -> Agent:
        def run(c: Connection) -> Agent:
            c.execute(agents.update().where(agents.c.username == username).values(availability=availability.value))
            row = c.execute(sa.select(agents).where(agents.c.username == username)).first()
            if row is None:
                raise NotFound(f"No agent {username!r}.")
            return _agent(row)
        return await self._tx(run)

    async def update_agent(
        self, username: str, *, capacity: Optional[int] = None, teams: Optional[Sequence[str]] = None
    ) -> Agent:
        def run(c: Connection) -> Agent:
            values: dict[str, Any] = {}
            if capacity is not None:
                values["capacity"] = capacity
            if teams is not None:
                values["teams"] = ",".join(teams)
            if values:
                c.execute(agents.update().where(agents.c.username == username).values(**values))
            row = c.execute(sa.select(agents).where(agents.c.username == username)).first()
            if row is None:
                raise NotFound(f"No agent {username!r}.")
            return _agent(row)
        return await self._tx(run)

    async def touch_agent(self, username: str, at: float) -> None:
        def run(c: Connection) -> None:
            c.execute(agents.update().where(agents.c.username == username).values(last_seen_at=at))
        await self._tx(run)

    async def mark_silent_agents_away(self, silent_since: float) -> list[Agent]:
        """Set every agent who is not away and whose inbox sent nothing since ``silent_since`` to
        away; return them."""
        def run(c: Connection) -> list[Agent]:
            silent = sa.and_(
                agents.c.availability != Availability.AWAY.value,
                sa.or_(agents.c.last_seen_at.is_(None), agents.c.last_seen_at < silent_since),
            )
            rows = list(c.execute(sa.select(agents).where(silent).with_for_update()))
            if rows:
                c.execute(
                    agents.update().where(agents.c.username.in_([r.username for r in rows]))
                    .values(availability=Availability.AWAY.value)
                )
            return [dataclasses.replace(_agent(r), availability=Availability.AWAY) for r in rows]
        return await self._tx(run)

    async def agent_loads(self) -> dict[str, int]:
        def run(c: Connection) -> dict[str, int]:
            q = (
                sa.select(conversations.c.assignee, sa.func.count())
                .where(conversations.c.status == Status.ASSIGNED.value, conversations.c.assignee.is_not(None))
                .group_by(conversations.c.assignee)
            )
            return {r[0]: int(r[1]) for r in c.execute(q)}
        return await self._tx(run)

    async def recent_waits(self, limit: int) -> list[float]:
        def run(c: Connection) -> list[float]:
            q = (
                sa.select(timeline.c.detail).where(timeline.c.kind == Move.CLAIMED.value)
                .order_by(timeline.c.id.desc()).limit(limit)
            )
            waits = [(_loads(r[0]) or {}).get("waited_s") for r in c.execute(q)]
            return [float(w) for w in waits if isinstance(w, (int, float))]
        return await self._tx(run)

    # -- canned responses ----------------------------------------------------------------------
    async def canned_responses(self) -> list[CannedResponse]:
        def run(c: Connection) -> list[CannedResponse]:
            rows = c.execute(sa.select(canned).order_by(canned.c.shortcut))
            return [CannedResponse(r.id, r.shortcut, r.text, r.created_by) for r in rows]
        return await self._tx(run)

    async def add_canned_response(self, shortcut: str, text: str, created_by: Optional[str]) -> CannedResponse:
        def run(c: Connection) -> CannedResponse:
            ins = c.execute(canned.insert().values(shortcut=shortcut, text=text, created_by=created_by, created_at=self._clock()))
            return CannedResponse(ins.inserted_primary_key[0], shortcut, text, created_by)
        try:
            return await self._tx(run)
        except IntegrityError as exc:
            raise Conflict(f"A canned response '/{shortcut}' already exists.") from exc

    async def delete_canned_response(self, canned_id: int) -> None:
        def run(c: Connection) -> None:
            if c.execute(canned.delete().where(canned.c.id == canned_id)).rowcount == 0:
                raise NotFound(f"No canned response {canned_id}.")
        await self._tx(run)

    async def create_session(self, token_hash: str, username: str, expires_at: float) -> None:
        def run(c: Connection) -> None:
            c.execute(sessions.insert().values(token_hash=token_hash, username=username, created_at=self._clock(), expires_at=expires_at))
        await self._tx(run)

    async def session_agent(self, token_hash: str, now_: float) -> Optional[Agent]:
        def run(c: Connection) -> Optional[Agent]:
            row = c.execute(_SESSION_AGENT, {"token_hash": token_hash, "now": now_}).first()
            return _agent(row) if row else None
        return await self._tx(run)

    async def delete_session(self, token_hash: str) -> None:
        def run(c: Connection) -> None:
            c.execute(sessions.delete().where(sessions.c.token_hash == token_hash))
        await self._tx(run)
