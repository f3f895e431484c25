"""deploy/endpoints.production.yml read by Rasa 3.6.21's own code, then used against the real
PostgreSQL and Redis on loopback (HANDOFF_TEST_PG_URL / HANDOFF_TEST_REDIS_URL, which
scripts/services.sh starts and prints): the SQL tracker store on PostgreSQL in its own database,
the Redis lock store. What the Rasa replicas of docker-compose.yml run, minus Docker."""

from __future__ import annotations

import os
import uuid
from typing import Iterator
from urllib.parse import unquote, urlsplit

import pytest

from .compose import DEPLOY

ENDPOINTS = DEPLOY / "endpoints.production.yml"
# The defaults scripts/services.sh uses when it starts the services itself.
PG_URL = os.environ.get("HANDOFF_TEST_PG_URL", "postgresql://handoff:handoff-test@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HANDOFF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def production_env(tracker_db: str, lock_db: str = "1") -> dict[str, str]:
    pg, rd = urlsplit(PG_URL), urlsplit(REDIS_URL)
    return {
        "HANDOFF_ACTION_URL": "http://127.0.0.1:5055/webhook",
        "RASA_TRACKER_DB_HOST": pg.hostname or "127.0.0.1",
        "RASA_TRACKER_DB_PORT": str(pg.port or 5432),
        "RASA_TRACKER_DB_NAME": tracker_db,
        "RASA_TRACKER_DB_USER": unquote(pg.username or ""),
        "RASA_TRACKER_DB_PASSWORD": unquote(pg.password or ""),
        "RASA_LOCK_REDIS_HOST": rd.hostname or "127.0.0.1",
        "RASA_LOCK_REDIS_PORT": str(rd.port or 6379),
        "RASA_LOCK_REDIS_PASSWORD": unquote(rd.password or ""),
        "RASA_LOCK_REDIS_DB": lock_db,
    }


def test_rasa_reads_the_production_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.lock_store import LockStore, RedisLockStore
    from rasa.core.utils import read_endpoints_from_path

    for key, value in production_env("rasa_tracker").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RASA_LOCK_REDIS_PASSWORD", "")  # a Redis without a password: set, but empty
    endpoints = read_endpoints_from_path(ENDPOINTS)
    assert endpoints.action.url == "http://127.0.0.1:5055/webhook"
    tracker = endpoints.tracker_store
    assert tracker.type == "SQL"
    assert tracker.kwargs["dialect"] == "postgresql" and tracker.kwargs["db"] == "rasa_tracker"
    assert endpoints.lock_store.type == "redis"
    lock_store = LockStore.create(endpoints.lock_store)  # redis-py connects lazily: nothing is opened here
    assert isinstance(lock_store, RedisLockStore)
    assert lock_store.key_prefix == "handoff:lock:"


def test_rasa_stops_on_an_unset_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.utils import read_endpoints_from_path

    for key, value in production_env("rasa_tracker").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RASA_TRACKER_DB_PASSWORD")
    with pytest.raises(Exception, match="RASA_TRACKER_DB_PASSWORD"):
        read_endpoints_from_path(ENDPOINTS)


@pytest.fixture
def tracker_database() -> Iterator[str]:
    """A fresh database for the tracker store, dropped afterwards (the test role has CREATEDB)."""
    import psycopg2

    name = f"rasa_tracker_deploy_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg2.connect(PG_URL, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at HANDOFF_TEST_PG_URL ({exc}); "
                    'start it with: eval "$(scripts/services.sh)"')
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


async def test_production_stores_work_against_real_postgres_and_redis(
    tracker_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis
    from rasa.core.lock_store import LockStore
    from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
    from rasa.core.utils import read_endpoints_from_path
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, ConversationPaused, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    env = production_env(tracker_database)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    endpoints = read_endpoints_from_path(ENDPOINTS)

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at HANDOFF_TEST_REDIS_URL ({exc}); "
                    'start it with: eval "$(scripts/services.sh)"')

    store = TrackerStore.create(endpoints.tracker_store, Domain.empty())
    assert isinstance(store, SQLTrackerStore)
    try:
        conversation = f"deploy-{uuid.uuid4().hex[:8]}"
        tracker = DialogueStateTracker(conversation, slots=[])
        tracker.update(UserUttered("can I talk to a person?", {"name": "request_human", "confidence": 0.97}))
        tracker.update(ConversationPaused())
        tracker.update(ActionExecuted("action_listen"))
        await store.save(tracker)
        # A second Rasa instance is just another store on the same database.
        other = TrackerStore.create(endpoints.tracker_store, Domain.empty())
        try:
            again = await other.retrieve(conversation)
        finally:
            other.engine.dispose()
        assert again is not None
        assert [type(e).__name__ for e in again.events] == ["UserUttered", "ConversationPaused", "ActionExecuted"]
        assert again.is_paused()
    finally:
        store.engine.dispose()

    lock_store = LockStore.create(endpoints.lock_store)
    probe = redis.Redis(host=env["RASA_LOCK_REDIS_HOST"], port=int(env["RASA_LOCK_REDIS_PORT"]),
                        db=int(env["RASA_LOCK_REDIS_DB"]), password=env["RASA_LOCK_REDIS_PASSWORD"] or None)
    key = f"handoff:lock:{conversation}"
    async with lock_store.lock(conversation, lock_lifetime=30):
        assert probe.exists(key), "the conversation lock should live in Redis, where every Rasa instance sees it"
    assert not probe.exists(key)
    probe.close()
