"""Screenshots of the inbox and the widget for docs/screenshots/, taken on the real product.

    .venv/bin/python -m tests.browser.make_screenshots                 # starts its own stack
    .venv/bin/python -m tests.browser.make_screenshots --base-url http://127.0.0.1:8000 \\
        --password handoff-demo --tom-password password123            # an already running stack

A few visitors talk to the real bot and ask for a person; Sarah takes one and answers it, Tom
another; two visitors leave a message instead (offline tickets); then the queue, an open
conversation, the Tickets tab, the supervisors' team view and the widget mid-handoff are captured
at 1280x800 (docs/screenshots/) and again at 1440x900 and 1024x720 (a temporary directory, for
checking the layout; not committed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Optional

from playwright.async_api import async_playwright, expect

from handoff_channel.devstack import Stack, train
from handoff_channel.models import Handoff
from handoff_channel.settings import REPO_ROOT
from handoff_channel.store import SqlConversationStore
from tests.support import AgentClient, Visitor, free_port

from .conftest import CHROMIUM, CHROMIUM_ARGS
from .pages import InboxPage, VisitorPage, leave

OUT = REPO_ROOT / "docs" / "screenshots"


async def talk(base: str, name: Optional[str], lines: list[str], *, tier: Optional[str] = None) -> str:
    """A visitor (socket.io, like the widget) says ``lines``, waiting for the bot after each."""
    custom: dict[str, str] = {"language": "en"}
    if name:
        custom["name"] = name
    if tier:
        custom["tier"] = tier
    v = Visitor(base)
    await v.connect()
    try:
        for line in lines:
            # Once the bot has handed over, the visitor waits: the bot no longer answers each line.
            if any("Connecting you to a person" in t for t in v.texts()):
                break
            before = len(v.received)
            await v.say(line, custom=custom)
            await v.wait_for(lambda ms, n=before: len(ms) > n, timeout=20)
            await asyncio.sleep(0.3)  # let a multi-part answer arrive
        return str(v.session_id)
    finally:
        await leave(v)


BOT_HAS_TICKET_FORM = "offline_ticket_form" in (REPO_ROOT / "bot" / "domain.yml").read_text()


async def leave_message(base: str, db_url: str, name: str, email: str, issue: str, lines: list[str]) -> None:
    """A visitor who leaves a message instead of waiting: through the bot's offline ticket form
    when the bot has it; otherwise the visitor talks to the bot (``lines``) and the ticket the
    form would have produced is stored directly (the inbox then reloads to list it)."""
    custom = {"language": "en", "name": name}
    v = Visitor(base)
    await v.connect()
    try:
        for line in (lines + ["/handoff_leave_message", email, issue]) if BOT_HAS_TICKET_FORM else lines:
            before = len(v.received)
            await v.say(line, custom=custom)
            await v.wait_for(lambda ms, n=before: len(ms) > n, timeout=20)
            await asyncio.sleep(0.3)
        cid = str(v.session_id)
    finally:
        await leave(v)
    if BOT_HAS_TICKET_FORM:
        return
    store = SqlConversationStore(db_url)
    try:
        handoff = Handoff(reason="explicit_request", priority=2, team=None,
                          evidence={"text": lines[-1], "intent": "request_human", "confidence": 0.96},
                          summary={"headline": lines[-1][:70], "text": "Visitor: " + "\n".join(lines)})
        await store.add_ticket(cid, uuid.uuid4().hex, email=email, issue=issue, why="no_agents", handoff=handoff)
    finally:
        await store.close()


async def find(agent: AgentClient, label: str) -> str:
    for _ in range(50):
        rows = (await agent.ok("GET", "/api/conversations?view=open"))["conversations"]
        for row in rows:
            if row["visitor_label"] == label:
                return str(row["id"])
        await asyncio.sleep(0.2)
    raise AssertionError(f"no open conversation for {label}")


async def run(base: str, password: str, tom_password: str, db_url: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sarah = AgentClient(base)
    await sarah.login("sarah", password)
    tom = AgentClient(base)
    await tom.login("tom", tom_password)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = await browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
        await ctx.route("**/fonts.googleapis.com/**", lambda r: r.abort())
        inbox = InboxPage(await ctx.new_page(), base)
        await inbox.login("sarah", password)

        # Conversations that end up in the queue, oldest first.
        await talk(base, "Jonas Weber", ["hi", "I need to change the delivery address for order 51234",
                                         "can I talk to a person please"])
        # "/request_human" is what the widget sends for a click on the "Talk to a person" button.
        await talk(base, None, ["where is my order", "/request_human"])
        await talk(base, "Emma Larsen", ["Hello", "how do returns work?",
                                         "I sent a jacket back 3 weeks ago and still have no refund",
                                         "I want to talk to a human"], tier="vip")
        await talk(base, "Mia Chen", ["I can't log in", "I want to speak to someone"])

        # Tom takes Jonas's conversation; Sarah will take Lena's (in the widget, below).
        jonas = await find(tom, "Jonas Weber")
        await tom.ok("POST", f"/api/conversations/{jonas}/claim")
        await tom.ok("POST", f"/api/conversations/{jonas}/messages",
                     {"text": "Hi Jonas, Tom here. Which address should it go to?", "client_id": os.urandom(8).hex()})

        # The visitor in the real widget.
        visitor_ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
        await visitor_ctx.route("**/fonts.googleapis.com/**", lambda r: r.abort())
        visitor = VisitorPage(await visitor_ctx.new_page(), base)
        await visitor.open_chat(name="Lena Fischer")
        await visitor.say("where is my order 48215?")
        await visitor.expect_response("48215")
        await visitor.say("It says delivered but nothing arrived. I want to talk to a human")
        await visitor.expect_response("Connecting you to a person")

        await find(sarah, "Lena Fischer")
        await expect(inbox.row("Lena Fischer")).to_be_visible(timeout=10_000)
        await inbox.open("Lena Fischer")
        await inbox.claim()
        await inbox.reply("Hi Lena, Sarah here. I'm sorry the parcel hasn't turned up. Let me check with the courier.")
        await visitor.expect_response("Let me check with the courier")
        # (c) the widget mid-handoff: the bot's hand-over, the agent joining, the first reply
        await visitor.page.wait_for_timeout(400)
        await visitor.page.screenshot(path=str(OUT / "widget-handoff.png"))
        await visitor.say("Thank you! I was home all day yesterday.")
        await inbox.note("Courier says left with neighbour at no. 14. Ask Lena to check before we reship.")
        await inbox.reply("The courier says it was left with your neighbour at number 14. Could you check with them?")
        await visitor.expect_response("neighbour at number 14")

        # (b) the open conversation with its summary panel
        await expect(inbox.message("visitor", "I was home all day")).to_be_visible()
        await inbox.page.locator(".composer-input").click()
        await inbox.page.locator(".composer-input").fill("Let me know what they say, and if")
        await expect(inbox.page.locator(".toast")).to_be_hidden(timeout=10_000)
        await inbox.page.screenshot(path=str(OUT / "inbox-conversation.png"))

        # (a) the queue: everything open, one waiting conversation selected
        await inbox.tab("open")
        await inbox.open("Emma Larsen")
        await inbox.page.locator(".transcript").focus()
        await expect(inbox.page.locator(".toast")).to_be_hidden(timeout=10_000)
        await inbox.page.wait_for_timeout(1500)  # let the wait clocks tick
        await inbox.page.screenshot(path=str(OUT / "inbox-queue.png"))

        # (d) offline tickets: teams and availability first, so the team view has something to show
        await sarah.ok("POST", "/api/agents/sarah", {"teams": ["billing", "orders"], "capacity": 4})
        await sarah.ok("POST", "/api/agents/tom", {"teams": ["orders"], "capacity": 3})
        await leave_message(base, db_url, "Noah Becker", "noah.becker@example.com",
                            "The invoice for order 50711 shows the wrong VAT number, can you send a corrected one?",
                            ["hi", "where is my order 50711"])
        await leave_message(base, db_url, "Sofia Rossi", "sofia.rossi@example.org",
                            "My discount code SPRING15 was not applied at checkout. Please refund the difference.",
                            ["hello", "my discount code SPRING15 did not work at checkout"])
        if not BOT_HAS_TICKET_FORM:
            await inbox.page.reload()
            await expect(inbox.page.locator(".topbar .me-name")).to_be_visible(timeout=10_000)
        await inbox.tab("tickets")
        await expect(inbox.ticket("sofia.rossi@example.org")).to_be_visible(timeout=10_000)
        await inbox.ticket("sofia.rossi@example.org").click()
        await expect(inbox.page.locator(".ticket-view .ticket-log .msg").first).to_be_visible(timeout=10_000)
        await expect(inbox.page.locator(".toast")).to_be_hidden(timeout=10_000)
        await inbox.page.wait_for_timeout(500)
        await inbox.page.screenshot(path=str(OUT / "inbox-tickets.png"))

        # (e) the supervisors' team view (Sarah is a supervisor here), beside the waiting queue
        await sarah.ok("POST", "/api/agents/priya", {"teams": ["billing"], "capacity": 5})
        await inbox.tab("unassigned")
        await inbox.page.locator(".topbar [data-action=team]").click()
        await expect(inbox.page.locator(".team-table tbody tr").first).to_be_visible(timeout=10_000)
        await inbox.page.wait_for_timeout(500)
        await inbox.page.screenshot(path=str(OUT / "inbox-team.png"))

        # The same screens at other sizes, for checking the layout (not committed).
        extra = Path(tempfile.mkdtemp(prefix="inbox-shots-"))
        for width, height in ((1440, 900), (1024, 720)):
            await inbox.page.set_viewport_size({"width": width, "height": height})
            await inbox.page.wait_for_timeout(300)
            await inbox.page.screenshot(path=str(extra / f"team-{width}.png"))
            await inbox.tab("tickets")
            await inbox.page.wait_for_timeout(300)
            await inbox.page.screenshot(path=str(extra / f"tickets-{width}.png"))
            await inbox.tab("open")
            await inbox.open("Lena Fischer")
            await inbox.page.wait_for_timeout(300)
            await inbox.page.screenshot(path=str(extra / f"conversation-{width}.png"))
            await inbox.open("Emma Larsen")
            await inbox.page.wait_for_timeout(300)
            await inbox.page.screenshot(path=str(extra / f"queue-{width}.png"))
            await inbox.page.locator(".topbar [data-action=team]").click()
        print(f"other sizes: {extra}")
        await browser.close()
    await sarah.close()
    await tom.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running gateway; default: start a stack")
    parser.add_argument("--password", default="handoff-demo", help="sarah's password on --base-url")
    parser.add_argument("--tom-password", default="handoff-demo", help="tom's password on --base-url")
    parser.add_argument("--db-url", default="", help="the store of --base-url (only for tickets while the bot has no ticket form)")
    args = parser.parse_args()
    if args.base_url:
        asyncio.run(run(args.base_url.rstrip("/"), args.password, args.tom_password, args.db_url))
        print(f"screenshots in {OUT}")
        return
    run_dir = Path(tempfile.mkdtemp(prefix="handoff-shots-"))
    stack = Stack(model=train("config.fast.yml", "handoff-test", out=REPO_ROOT / ".cache" / "models", quiet=True),
                  run_dir=run_dir, gateway_port=free_port(), rasa_port=free_port(), actions_port=free_port(),
                  token="shots-" + os.urandom(8).hex())
    stack.create_agent("sarah", "Sarah", "handoff-demo", supervisor=True)
    stack.create_agent("tom", "Tom", "handoff-demo")
    stack.create_agent("priya", "Priya Nair", "handoff-demo")  # never logs in: away in the team view
    stack.start()
    try:
        stack.wait_ready(timeout=300)
        asyncio.run(run(stack.gateway_url, "handoff-demo", "handoff-demo", stack.db_url))
    finally:
        stack.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
