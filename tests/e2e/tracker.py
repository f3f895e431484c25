"""Read Rasa's own record (the SQL tracker store the stack uses) the way Rasa's tools would."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable


def tracker_events(db: Path, conversation_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT data FROM events WHERE sender_id = ? ORDER BY id", (conversation_id,)
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


async def wait_tracker(db: Path, conversation_id: str, predicate: Callable[[list[dict[str, Any]]], bool],
                       timeout: float = 20.0) -> list[dict[str, Any]]:
    """Wait until Rasa's record satisfies ``predicate`` (the pipe logs asynchronously)."""
    import asyncio

    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            events = tracker_events(db, conversation_id)
        except sqlite3.OperationalError:
            events = []
        if predicate(events):
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"tracker never matched; last events: {[e.get('event') for e in events][-30:]}")


def backdate(db: Path, conversation_id: str, seconds: float) -> None:
    """Make every event of a conversation look ``seconds`` older, as if the visitor had been silent
    that long (Rasa decides session expiry from these timestamps)."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT id, data, timestamp FROM events WHERE sender_id = ?", (conversation_id,)).fetchall()
        for row_id, data, ts in rows:
            event = json.loads(data)
            event["timestamp"] = event.get("timestamp", ts) - seconds
            con.execute("UPDATE events SET data = ?, timestamp = ? WHERE id = ?",
                        (json.dumps(event), ts - seconds, row_id))
        con.commit()


def kinds(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        if e["event"] == "action":
            out.append(f"action:{e.get('name')}")
        elif e["event"] == "user":
            out.append(f"user:{(e.get('parse_data') or {}).get('intent', {}).get('name')}")
        else:
            out.append(e["event"])
    return out
