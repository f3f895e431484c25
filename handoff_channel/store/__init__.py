"""The conversation store port and its adapters, chosen by URL."""

from .base import ConversationStore
from .sql import SqlConversationStore


def create_store(url: str, *, pool_size: int = 8) -> ConversationStore:
    """``sqlite:///path.db`` (embedded default) or ``postgresql://...`` (production)."""
    return SqlConversationStore(url, pool_size=pool_size)


__all__ = ["ConversationStore", "SqlConversationStore", "create_store"]
