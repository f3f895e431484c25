"""Pub/sub of feed events between the parts of the gateway (and, with Redis, between instances).
The bus only says "this happened"; the store's feed is the record a reconnecting client replays."""

from __future__ import annotations

from typing import AsyncIterator, Optional, Protocol

from ..models import Event

# A bus that may have missed events (Redis reconnected after an outage) hands each subscriber an
# event of this type; the subscriber then catches up from the store's feed.
RESYNC = "bus_resync"


def resync_event() -> Event:
    return Event(id=0, type=RESYNC, conversation_id="", data={}, created_at=0.0)


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]:
        """Events in publish order; ends when the subscription is closed or dropped."""
        ...

    async def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event; None once the subscription was dropped for falling too far behind
        (the subscriber then catches up from the store). Raises asyncio.TimeoutError."""
        ...

    async def close(self) -> None: ...


class EventBus(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, event: Event) -> None: ...

    def subscribe(self) -> Subscription: ...
