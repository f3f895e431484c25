"""The event bus port and its adapters, chosen by URL (``memory://`` or ``redis://...``)."""

from .base import RESYNC, EventBus, Subscription, resync_event
from .memory import MemoryEventBus


def create_bus(url: str) -> EventBus:
    if url.startswith("memory:"):
        return MemoryEventBus()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import (
            RedisEventBus,  # imported lazily: the embedded mode never needs redis
        )

        return RedisEventBus(url)
    raise ValueError(f"Unsupported bus URL {url!r}: use memory:// or redis://host:port/db")


__all__ = ["RESYNC", "EventBus", "Subscription", "MemoryEventBus", "create_bus", "resync_event"]
