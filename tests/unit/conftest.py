"""Fixtures of the unit tests: a real SQLite store, the in-process bus and a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from handoff_channel.bus import MemoryEventBus
from handoff_channel.service import HandoffService
from handoff_channel.settings import Settings
from handoff_channel.store import SqlConversationStore


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_service(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Callable[..., HandoffService]]:
    stores: list[SqlConversationStore] = []

    def make(**settings: object) -> HandoffService:
        store = SqlConversationStore(f"sqlite:///{tmp_path / 'h.db'}", clock=clock)
        stores.append(store)
        return HandoffService(store, MemoryEventBus(), Settings(**settings), clock=clock)  # type: ignore[arg-type]

    yield make
    for s in stores:
        await s.close()
