"""Optional, pluggable summarisers: another way to write the summary ``text`` an agent reads.

Off by default. The deterministic summary of ``handoff_channel.summary`` is always built first and
stays in the payload (headline, facts, evidence, last messages); a summariser may only replace the
free ``text``, and the deterministic one is kept as ``summary["deterministic_text"]``. Any failure
(timeout, HTTP error, empty answer) leaves the deterministic text in place: a hand-off never waits
on, or fails because of, a summariser.

Configured by the action server's environment:

* ``HANDOFF_SUMMARIZER_URL`` -- an LLM endpoint. By default it speaks the OpenAI-compatible chat
  completions API (``POST {model, messages, temperature: 0}`` -> ``choices[0].message.content``),
  which OpenAI, Azure OpenAI, vLLM, Ollama (``/v1/chat/completions``), llama.cpp's server and most
  gateways accept. ``HANDOFF_SUMMARIZER_FORMAT=json`` instead posts
  ``{"handoff": ..., "transcript": [...]}`` and expects ``{"text": "..."}``, for an in-house
  service.
* ``HANDOFF_SUMMARIZER_MODEL`` (sent as ``model``), ``HANDOFF_SUMMARIZER_API_KEY`` (sent as
  ``Authorization: Bearer``), ``HANDOFF_SUMMARIZER_TIMEOUT`` seconds (default 4).
* ``HANDOFF_SUMMARIZER=package.module:factory`` -- any Python summariser: ``factory()`` returns an
  object with a ``name`` and a ``summarize(handoff, transcript) -> str | None`` method.

Note that the LLM endpoint receives the visitor's messages: point it only at a service your
privacy policy allows. The tests never call one unless they start a local fake.

Standard library only: this runs in the action server.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Protocol

from .summary import Handoff, Transcript, read_transcript

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 1200
DEFAULT_TIMEOUT = 4.0

SYSTEM_PROMPT = (
    "You write hand-off notes for customer-service agents of an online shop. The assistant bot is "
    "handing a chat to a person. In at most 6 short lines, plain text, no markdown: first what the "
    "visitor wants, then why the bot handed off, then the key facts (order number, email, invoice), "
    "then what the bot already answered. Use only facts from the material below; never invent any. "
    "If the visitor mentions harming themselves or others, say so on the first line."
)


class Summarizer(Protocol):
    """Writes the summary text of a hand-off (or returns None to keep the deterministic one)."""

    name: str

    def summarize(self, handoff: Handoff, transcript: Transcript) -> Optional[str]: ...


class HttpSummarizer:
    """Asks an LLM endpoint (by URL) for the summary text. See the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        model: str = "",
        api_key: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        wire_format: str = "openai",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"HANDOFF_SUMMARIZER_URL must be an http(s) URL, got {url!r}")
        if wire_format not in ("openai", "json"):
            raise ValueError(f"HANDOFF_SUMMARIZER_FORMAT must be 'openai' or 'json', got {wire_format!r}")
        self.url = url
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.wire_format = wire_format
        self.name = f"http:{wire_format}"

    def request_body(self, handoff: Handoff, transcript: Transcript) -> dict[str, Any]:
        lines = transcript_lines(transcript)
        if self.wire_format == "json":
            return {"handoff": handoff, "transcript": lines}
        material = (
            f"Reason for the hand-off: {handoff['reason']} (priority {handoff['priority']}).\n"
            f"Automatic summary:\n{handoff['summary'].get('text', '')}\n\n"
            "Transcript (oldest first):\n" + "\n".join(lines)
        )
        body: dict[str, Any] = {
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": material}],
            "temperature": 0,
        }
        if self.model:
            body["model"] = self.model
        return body

    def summarize(self, handoff: Handoff, transcript: Transcript) -> Optional[str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(self.request_body(handoff, transcript)).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - a configured URL
            answer = json.loads(response.read().decode("utf-8"))
        if self.wire_format == "json":
            text = answer.get("text") if isinstance(answer, Mapping) else None
        else:
            try:
                text = answer["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                text = None
        return text if isinstance(text, str) else None


def transcript_lines(transcript: Transcript) -> list[str]:
    """The visitor's side of the conversation as short lines for a prompt."""
    return [f"Visitor: {turn.text}" for turn in transcript.visitor]


def summarizer_from_env(env: Optional[Mapping[str, str]] = None) -> Optional[Summarizer]:
    """The summariser the environment configures, or None (the default: deterministic only)."""
    env = os.environ if env is None else env
    custom = (env.get("HANDOFF_SUMMARIZER") or "").strip()
    if custom:
        module_name, _, factory_name = custom.partition(":")
        factory = getattr(importlib.import_module(module_name), factory_name or "summarizer")
        return factory()  # type: ignore[no-any-return]
    url = (env.get("HANDOFF_SUMMARIZER_URL") or "").strip()
    if not url:
        return None
    timeout = float(env.get("HANDOFF_SUMMARIZER_TIMEOUT") or DEFAULT_TIMEOUT)
    return HttpSummarizer(
        url,
        model=(env.get("HANDOFF_SUMMARIZER_MODEL") or "").strip(),
        api_key=(env.get("HANDOFF_SUMMARIZER_API_KEY") or "").strip() or None,
        timeout=timeout,
        wire_format=(env.get("HANDOFF_SUMMARIZER_FORMAT") or "openai").strip(),
    )


def apply_summarizer(
    handoff: Handoff, events: Sequence[Mapping[str, Any]], summarizer: Optional[Summarizer]
) -> Handoff:
    """``handoff`` with the summariser's text, or unchanged when there is none or it fails."""
    if summarizer is None:
        return handoff
    try:
        text = summarizer.summarize(handoff, read_transcript(events))
    except (OSError, urllib.error.URLError, ValueError, TimeoutError) as error:
        log.warning("summariser %s failed, keeping the deterministic summary: %s", summarizer.name, error)
        return handoff
    except Exception:  # noqa: BLE001 - a plug-in's bug must not stop a hand-off
        log.exception("summariser %s raised, keeping the deterministic summary", summarizer.name)
        return handoff
    text = (text or "").strip()
    if not text:
        return handoff
    summary = dict(handoff["summary"])
    summary["deterministic_text"] = summary.get("text", "")
    summary["text"] = text[:MAX_TEXT_CHARS]
    summary["generated_by"] = summarizer.name
    return {**handoff, "summary": summary}  # type: ignore[typeddict-item]


async def apply_summarizer_async(
    handoff: Handoff, events: Sequence[Mapping[str, Any]], summarizer: Optional[Summarizer]
) -> Handoff:
    """``apply_summarizer`` off the event loop (the HTTP call blocks)."""
    if summarizer is None:
        return handoff
    return await asyncio.to_thread(apply_summarizer, handoff, events, summarizer)
