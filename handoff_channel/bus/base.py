"""Pub/sub of feed events between the parts of the gateway (and, with Redis, between instances).
The bus only says "this happened"; the store's feed is the record a reconnecting client replays."""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from ..models import Event


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...


class EventBus(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, event: Event) -> None: ...

    def subscribe(self) -> Subscription: ...
