"""Stage timestamps of forwarded messages inside the gateway, for ``bench.run --stages``.

``bench.run --stages`` puts this directory first on the product's PYTHONPATH and sets
``BENCH_STAGES_DIR``. Python imports ``sitecustomize`` at start-up in every process; only the
gateway (``python -m handoff_channel serve``) is touched: once its modules are imported, a few
methods are wrapped to note ``(stage, key, time.time())`` for every benchmark line (``#c-...``).
Nothing in ``handoff_channel`` knows about it, and without the variable it does nothing.

Stages, visitor → agent: ``v_in`` (socket.io handler entered), ``v_acked`` (stored and published,
the ack returned), ``v_sse`` (an SSE stream takes the frame, once per stream).
Agent → visitor: ``a_in`` (agent_reply entered), ``a_stored`` (stored, published), ``a_relay`` (the
visitor relay takes the event), ``a_emitted`` (handed to python-socketio)."""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.util
import json
import os
import re
import sys
import time
from typing import Any, Callable

_DIR = os.environ.get("BENCH_STAGES_DIR")
_KEY = re.compile(r"#(c-[\w-]+)")
_rows: list[tuple[str, str, float]] = []


def _cmdline() -> str:
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _note(stage: str, text: Any) -> None:
    m = _KEY.search(text) if isinstance(text, str) else None
    if m:
        _rows.append((stage, m.group(1), time.time()))
        if len(_rows) >= 500:  # written as it goes: the bench may stop the gateway hard
            _dump()


def _dump() -> None:
    if not _rows:
        return
    with open(os.path.join(str(_DIR), f"gateway-{os.getpid()}.jsonl"), "a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in _rows)
    _rows.clear()


def _text_of(data: Any) -> Any:
    return data.get("message") if isinstance(data, dict) else None


def _patch_visitor(module: Any) -> None:
    cls = module.VisitorSockets
    on_user_uttered, relay_one = cls.on_user_uttered, cls._relay_one

    @functools.wraps(on_user_uttered)
    async def user_uttered(self: Any, sid: str, data: Any) -> Any:
        _note("v_in", _text_of(data))
        try:
            return await on_user_uttered(self, sid, data)
        finally:
            _note("v_acked", _text_of(data))

    @functools.wraps(relay_one)
    async def relay(self: Any, event: Any) -> Any:
        text = (event.data.get("message") or {}).get("text") if event.type == "message_created" else None
        _note("a_relay", text)
        try:
            return await relay_one(self, event)
        finally:
            _note("a_emitted", text)

    cls.on_user_uttered, cls._relay_one = user_uttered, relay


def _patch_inbox(module: Any) -> None:
    cls = module.InboxApi
    frame = cls._frame

    @functools.wraps(frame)
    def traced(self: Any, event: Any) -> str:
        out = frame(self, event)
        if event.type == "message_created":
            _note("v_sse", out)
        return out

    cls._frame = traced


def _patch_service(module: Any) -> None:
    cls = module.HandoffService
    agent_reply = cls.agent_reply

    @functools.wraps(agent_reply)
    async def traced(self: Any, conversation_id: str, agent: Any, text: Any, **kw: Any) -> Any:
        _note("a_in", text)
        try:
            return await agent_reply(self, conversation_id, agent, text, **kw)
        finally:
            _note("a_stored", text)

    cls.agent_reply = traced


_PATCHES: dict[str, Callable[[Any], None]] = {
    "handoff_channel.gateway.visitor": _patch_visitor,
    "handoff_channel.gateway.inbox_api": _patch_inbox,
    "handoff_channel.service": _patch_service,
}


class _Finder(importlib.abc.MetaPathFinder):
    """Runs a patch right after its module has been executed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if _DIR and "handoff_channel serve" in _cmdline():
    sys.meta_path.insert(0, _Finder())
    atexit.register(_dump)
