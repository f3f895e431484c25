"""The conversation store port and its adapters, chosen by URL."""

from .base import ConversationStore
from .sql import SqlConversationStore


def create_store(url: str) -> ConversationStore:
    """``sqlite:///path.db`` (embedded default) or ``postgresql://...`` (production)."""
    return SqlConversationStore(url)


__all__ = ["ConversationStore", "SqlConversationStore", "create_store"]
