"""What a visitor and an agent do in their pages, in their words. Tests read as the story; the
selectors live here. Every wait is an expectation with a timeout, never a sleep."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from typing import Optional
from urllib.parse import urlencode

from playwright.async_api import Locator, Page, expect

from tests.support import Visitor

TIMEOUT = 20_000  # ms: a bot turn on the real stack takes well under a second; CI machines vary
ASK_FOR_PERSON = "I want to talk to a human"


def unique_name(prefix: str) -> str:
    """A visitor name no other test uses, so a test finds its own row in a shared inbox."""
    return f"{prefix} {uuid.uuid4().hex[:6]}"


async def leave(visitor: Visitor) -> None:
    """Disconnect a socket.io test visitor at once. ``Visitor.close()`` waits for the pending
    long-poll request to come back (~25 s with the polling transport); a test that is done with
    the visitor need not wait for it."""
    eio = visitor.sio.eio
    tasks = [t for t in (getattr(eio, "read_loop_task", None), getattr(eio, "write_loop_task", None)) if t]
    await eio.disconnect(abort=True)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def queued_conversation(base_url: str, name: str) -> Visitor:
    """A socket.io visitor named ``name`` who asked for a person and was told one is coming."""
    visitor = Visitor(base_url)
    await visitor.connect()
    await visitor.say(ASK_FOR_PERSON, custom={"language": "en", "name": name})
    await visitor.wait_text("Connecting you to a person")
    return visitor


class VisitorPage:
    """The demo shop page with the stock rasa-webchat widget."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    async def open_chat(self, *, name: Optional[str] = None, vip: bool = False) -> None:
        query = {"delay": "0"}
        if name:
            query["name"] = name
        if vip:
            query["vip"] = "1"
        await self.page.goto(f"{self.base_url}/?{urlencode(query)}")
        await self.page.locator(".rw-launcher").click()
        # initPayload "/greet": the bot's greeting proves the socket, the gateway and Rasa work.
        await expect(self.page.locator(".rw-response").first).to_contain_text("assistant", timeout=TIMEOUT)

    async def say(self, text: str) -> None:
        box = self.page.locator(".rw-new-message")
        await box.fill(text)
        await box.press("Enter")
        await expect(self.page.locator(".rw-client").last).to_contain_text(text[:40], timeout=TIMEOUT)

    def responses(self, text: str | re.Pattern[str]) -> Locator:
        return self.page.locator(".rw-response").filter(has_text=text)

    async def expect_response(self, text: str | re.Pattern[str]) -> None:
        await expect(self.responses(text).first).to_be_visible(timeout=TIMEOUT)

    async def all_text(self) -> str:
        return "\n".join(await self.page.locator(".rw-messages-container").all_inner_texts())

    async def session_id(self) -> str:
        raw = await self.page.evaluate("localStorage.getItem('chat_session')")
        return str(json.loads(raw)["session_id"])


class InboxPage:
    """The agents' inbox at /inbox."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    async def login(self, username: str, password: str) -> None:
        await self.page.goto(f"{self.base_url}/inbox")
        await self.page.locator("input[name=username]").fill(username)
        await self.page.locator("input[name=password]").fill(password)
        await self.page.locator("button[type=submit]").click()
        await expect(self.page.locator(".topbar .me-name")).to_be_visible(timeout=TIMEOUT)

    def row(self, label: str) -> Locator:
        return self.page.locator(".rows .row").filter(has=self.page.locator(".row-name", has_text=label))

    async def tab(self, view: str) -> None:
        await self.page.locator(f".tab[data-view={view}]").click()

    async def open(self, label: str) -> None:
        await self.row(label).click()
        await expect(self.page.locator(".conv-head h2")).to_have_text(label, timeout=TIMEOUT)
        await expect(self.page.locator(".transcript .msg").first).to_be_visible(timeout=TIMEOUT)

    async def claim(self) -> None:
        await self.page.locator(".conv-actions [data-action=claim]").click()
        await expect(self.page.locator(".conv-head .chip-assigned")).to_have_text("Assigned to you", timeout=TIMEOUT)

    @property
    def composer(self) -> Locator:
        return self.page.locator(".composer-input")

    async def reply(self, text: str) -> None:
        await self.page.locator(".composer .mode[data-mode=reply]").click()
        await self.composer.fill(text)
        await self.composer.press("Enter")
        await expect(self.message("agent", text)).to_be_visible(timeout=TIMEOUT)
        await expect(self.page.locator(".transcript .msg.pending")).to_have_count(0, timeout=TIMEOUT)

    async def note(self, text: str) -> None:
        await self.page.locator(".composer .mode[data-mode=note]").click()
        await self.composer.fill(text)
        await self.composer.press("Enter")
        await expect(self.message("note", text)).to_be_visible(timeout=TIMEOUT)
        await expect(self.page.locator(".transcript .msg.pending")).to_have_count(0, timeout=TIMEOUT)

    def message(self, role: str, text: str | re.Pattern[str]) -> Locator:
        """A confirmed (stored) message of ``role`` in the open transcript."""
        return self.page.locator(f".transcript .msg-{role}:not(.pending) .bubble").filter(has_text=text)

    async def hand_back(self, outcome: str = "resolved", note: str = "", facts: Optional[dict[str, str]] = None) -> None:
        await self.page.locator(".conv-actions [data-action=handback]").click()
        dialog = self.page.locator("dialog[open]")
        await dialog.locator(f"input[name=outcome][value={outcome}]").check()
        if note:
            await dialog.locator("textarea[name=note]").fill(note)
        for key, value in (facts or {}).items():
            await dialog.get_by_role("button", name="+ Add a fact").click()
            await dialog.locator(".fact-row input[aria-label='Fact name']").last.fill(key)
            await dialog.locator(".fact-row input[aria-label='Fact value']").last.fill(value)
        await dialog.get_by_role("button", name="Hand back").click()
        await expect(dialog).to_have_count(0, timeout=TIMEOUT)
        await expect(self.page.locator(".conv-head .chip-bot")).to_be_visible(timeout=TIMEOUT)

    # -- issue 6: tickets, transfer, escalate, the team view ---------------------------------------

    async def set_availability(self, value: str) -> None:
        await self.page.locator(".topbar select.availability").select_option(value)
        await expect(self.page.locator(".topbar")).to_have_attribute("data-availability", value, timeout=TIMEOUT)

    def ticket(self, email: str) -> Locator:
        return self.page.locator(".rows .ticket-row").filter(has=self.page.locator(".row-name", has_text=email))

    async def transfer(self, *, to: Optional[str] = None, team: Optional[str] = None, note: str = "") -> None:
        """Transfer the open conversation with the T key: to a person (display name) or a team."""
        await self.page.locator(".transcript").click()  # out of the reply box: single keys are shortcuts
        await self.page.keyboard.press("t")
        dialog = self.page.locator("dialog[open]")
        await expect(dialog).to_contain_text("Transfer the conversation")
        target = dialog.locator(".target").filter(has=self.page.locator(".target-name", has_text=re.compile(f"^{re.escape(to or team or '')}$")))
        await target.locator("input").check(timeout=TIMEOUT)
        if note:
            await dialog.locator("textarea[name=note]").fill(note)
        await dialog.locator("textarea[name=note]").press("Control+Enter")
        await expect(dialog).to_have_count(0, timeout=TIMEOUT)

    async def escalate(self, note: str = "") -> None:
        await self.page.locator(".conv-actions [data-action=escalate]").click()
        dialog = self.page.locator("dialog[open]")
        await expect(dialog).to_contain_text("Escalate to a supervisor")
        await dialog.locator("textarea[name=note]").fill(note)
        await dialog.get_by_role("button", name="Escalate").click()
        await expect(dialog).to_have_count(0, timeout=TIMEOUT)
