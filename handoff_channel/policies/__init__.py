"""Rasa policies of the handoff extension. ``HandoffPolicy`` is the one a bot lists in
``config.yml`` (``name: handoff_channel.policies.HandoffPolicy``); the trigger logic it runs is in
``handoff_channel.policies.triggers`` (pure, no Rasa import)."""

from __future__ import annotations

from typing import Any

__all__ = ["HandoffPolicy"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (or ``.triggers``) must not import Rasa.
    if name == "HandoffPolicy":
        from .handoff_policy import HandoffPolicy

        return HandoffPolicy
    raise AttributeError(name)
