"""The gateway process: visitor sockets (rasa-webchat protocol), the inbox API with SSE, and the
web pages. ``create_app`` is the one composition root."""

from .app import create_app

__all__ = ["create_app"]
