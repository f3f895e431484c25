"""Fixtures of the contract suites: every adapter of a port behind one fixture, so one test runs
against each of them.

Redis: a private ``redis-server`` (no persistence, loopback, free port) is started once per session,
unless HANDOFF_TEST_REDIS_URL names one already running. Outage tests always start their own server,
because they kill and restart it. A missing or broken redis-server fails the run; it never skips
(CI installs the services it tests against).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Optional

import pytest
import sqlalchemy as sa

from handoff_channel.bus import EventBus, MemoryEventBus
from handoff_channel.bus.redis import RedisEventBus

from ..support import free_port

PG_URL_ENV = "HANDOFF_TEST_PG_URL"
REDIS_URL_ENV = "HANDOFF_TEST_REDIS_URL"
REDIS_BINARY = os.environ.get("HANDOFF_REDIS_SERVER", shutil.which("redis-server") or "/usr/bin/redis-server")

# Short enough that an outage test takes seconds; the production defaults are in RedisEventBus.
FAST_REDIS_TIMINGS: dict[str, float] = dict(
    backoff_min_s=0.05, backoff_max_s=0.5, connect_timeout_s=1.0,
    ping_interval_s=0.3, ping_timeout_s=0.5, open_timeout_s=2.0, close_flush_s=0.5,
)


def _ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A redis-server process this test session owns; it can be killed and started again on the
    same port, which is what a Redis restart looks like to the gateways."""

    port: int
    log_path: Path
    process: Optional["subprocess.Popen[bytes]"] = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        if not os.path.isfile(REDIS_BINARY) or not os.access(REDIS_BINARY, os.X_OK):
            pytest.fail(
                f"redis-server not found at {REDIS_BINARY}: install it (Debian: apt-get install redis-server) "
                f"or set HANDOFF_REDIS_SERVER to its path. {REDIS_URL_ENV} serves the other tests, but the "
                "outage tests kill and restart a redis-server of their own. A missing service fails, never skips.",
                pytrace=False,
            )
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [REDIS_BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice"],
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        # A short bounded poll for "the server is up" (nothing to await on a foreign process).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if _ping("127.0.0.1", self.port):
                return
            time.sleep(0.02)
        self.kill()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        pytest.fail(f"redis-server on port {self.port} did not come up within {timeout} s. Its log:\n{tail}",
                    pytrace=False)

    def kill(self) -> None:
        """Like a crash: SIGKILL, no goodbye to the clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing answers, as in a silent network partition."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def _start_private_redis(tmp_path_factory: pytest.TempPathFactory) -> RedisServer:
    server = RedisServer(port=free_port(), log_path=tmp_path_factory.mktemp("redis") / "redis.log")
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis the contract tests may use (but not restart): HANDOFF_TEST_REDIS_URL, or a private one."""
    external = os.environ.get(REDIS_URL_ENV)
    if external:
        import redis

        client = redis.Redis.from_url(external, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        except redis.RedisError as exc:
            pytest.fail(f"{REDIS_URL_ENV}={external} does not answer PING: {exc}", pytrace=False)
        finally:
            client.close()
        yield external
        return
    server = _start_private_redis(tmp_path_factory)
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis for one test, to kill, freeze and restart at will."""
    server = _start_private_redis(tmp_path_factory)
    try:
        yield server
    finally:
        server.kill()  # SIGKILL ends a frozen (SIGSTOPped) server too


BusFactory = Callable[..., Awaitable[EventBus]]
RedisFactory = Callable[..., Awaitable[RedisEventBus]]


@dataclass
class BusKit:
    """One adapter under test. ``new()`` opens another bus; with a shared adapter every bus of the
    kit is another gateway instance on the same backend (same channel), closed after the test."""

    adapter: str
    shared: bool
    new: BusFactory


def _redis_factory(url: str, opened: list[EventBus]) -> RedisFactory:
    # A channel of its own per test: nothing from an earlier test (or another run on a shared
    # Redis) can arrive.
    prefix = f"handoff-test-{uuid.uuid4().hex[:12]}"

    async def new(**options: Any) -> RedisEventBus:
        bus = RedisEventBus(url, prefix=prefix, **{**FAST_REDIS_TIMINGS, **options})
        opened.append(bus)
        await bus.open()
        return bus

    return new


def _memory_factory(opened: list[EventBus]) -> BusFactory:
    async def new(**options: Any) -> EventBus:
        bus = MemoryEventBus(**options)
        opened.append(bus)
        await bus.open()
        return bus

    return new


async def _close_all(opened: list[EventBus]) -> None:
    for bus in reversed(opened):
        await bus.close()


@pytest.fixture(params=["memory", "redis"])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[BusKit]:
    """Every EventBus adapter."""
    opened: list[EventBus] = []
    if request.param == "memory":
        kit = BusKit("memory", shared=False, new=_memory_factory(opened))
    else:
        kit = BusKit("redis", shared=True, new=_redis_factory(request.getfixturevalue("redis_url"), opened))
    try:
        yield kit
    finally:
        await _close_all(opened)


@pytest.fixture(params=["redis"])
async def shared_buses(request: pytest.FixtureRequest) -> AsyncIterator[BusKit]:
    """The adapters that connect several processes (each ``new()`` bus is another instance)."""
    opened: list[EventBus] = []
    try:
        yield BusKit("redis", shared=True, new=_redis_factory(request.getfixturevalue("redis_url"), opened))
    finally:
        await _close_all(opened)


@dataclass
class RedisKit:
    """The Redis adapter on a private server the test may kill, freeze and restart; ``new()`` opens
    another instance on it (same channel)."""

    server: RedisServer
    new: RedisFactory

    async def publish_raw(self, channel: str, payload: bytes) -> None:
        """Put anything on a channel, as a broken or foreign publisher would."""
        import redis.asyncio as aioredis

        client = aioredis.from_url(self.server.url)
        try:
            await client.publish(channel, payload)
        finally:
            await client.close()


@pytest.fixture
async def redis_kit(redis_server: RedisServer) -> AsyncIterator[RedisKit]:
    opened: list[EventBus] = []
    try:
        yield RedisKit(redis_server, _redis_factory(redis_server.url, opened))
    finally:
        await _close_all(opened)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own on the server HANDOFF_TEST_PG_URL names (dropped
    afterwards). Without the URL the test fails: production mode is part of the product."""
    admin = os.environ.get(PG_URL_ENV)
    if not admin:
        pytest.fail(f"{PG_URL_ENV} is not set: run `eval \"$(scripts/services.sh)\"` (make test does).")
    name = "handoff_t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", future=True)
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
