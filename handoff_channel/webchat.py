"""The shapes the stock rasa-webchat widget renders, and the conversion from what Rasa's bot says.

rasa-webchat renders exactly ``{text}``, ``{text, quick_replies}`` and ``{attachment}``; any other key
(but ``metadata``, which it strips) makes it drop the message. So every stored message maps to one
of these, and a Rasa message with text *and* an image becomes two."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .models import Message, Role

BotPart = tuple[str, Optional[dict[str, Any]], Optional[dict[str, Any]]]  # text, payload, meta


def _quick_replies(buttons: Any) -> list[dict[str, str]]:
    replies = []
    for b in buttons or []:
        if isinstance(b, Mapping) and b.get("title"):
            replies.append(
                {"content_type": "text", "title": str(b["title"]), "payload": str(b.get("payload") or b["title"])}
            )
    return replies


def from_rasa(message: Mapping[str, Any]) -> list[BotPart]:
    """Split one message Rasa collected (``text``, ``buttons``/``quick_replies``, ``image``,
    ``attachment``, ``elements``, ``custom``) into widget-renderable parts, the way Rasa's own
    socket.io output does: text split on blank lines, buttons on the last text part."""
    meta: dict[str, Any] = {}
    for key in ("utter_action",):
        if message.get(key):
            meta[key] = message[key]
    parts: list[BotPart] = []
    text = message.get("text")
    replies = _quick_replies(message.get("quick_replies") or message.get("buttons"))
    if isinstance(text, str) and text.strip():
        chunks = [c for c in text.strip().split("\n\n") if c.strip()]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            payload = {"quick_replies": replies} if (last and replies) else None
            parts.append((chunk, payload, meta or None))
    elif replies:
        parts.append(("", {"quick_replies": replies}, meta or None))
    if message.get("image"):
        src = str(message["image"])
        parts.append((f"[image] {src}", {"attachment": {"type": "image", "payload": {"src": src}}}, meta or None))
    if message.get("attachment"):
        att = message["attachment"]
        parts.append(("[attachment]", {"attachment": att}, meta or None))
    for element in message.get("elements") or []:
        title = element.get("title", "") if isinstance(element, Mapping) else ""
        parts.append(
            (
                f"[card] {title}",
                {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": [element]}}},
                meta or None,
            )
        )
    return parts


def to_widget(message: Message) -> Optional[dict[str, Any]]:
    """The ``bot_uttered`` payload for a stored message, or None if the visitor must not see it."""
    if not message.role.visible_to_visitor:
        return None
    payload = message.payload or {}
    if "attachment" in payload:
        return {"attachment": payload["attachment"]}
    out: dict[str, Any] = {"text": message.text}
    if payload.get("quick_replies"):
        out["quick_replies"] = list(payload["quick_replies"])
    if message.role is not Role.BOT:
        # The widget strips metadata before rendering; a page with a customComponent can use it.
        out["metadata"] = {
            "role": message.role.value,
            "author_name": message.author_name,
            **({"handoff": payload["handoff"]} if "handoff" in payload else {}),
        }
    return out
