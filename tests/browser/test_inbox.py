"""The agent inbox and the visitor widget, driven together in real Chromium against the real stack
(trained model, action server, ``rasa run`` with our channel, the gateway)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from playwright.async_api import Route, expect

from tests.conftest import PASSWORD
from tests.support import Visitor

from .pages import ASK_FOR_PERSON, TIMEOUT, InboxPage, VisitorPage, leave, queued_conversation, unique_name

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


async def test_visitor_and_agent_complete_a_handoff_and_the_bot_takes_over_again(new_page, base_url):
    agent = InboxPage(await new_page(), base_url)
    await agent.login("sarah", PASSWORD)
    visitor = VisitorPage(await new_page(), base_url)
    name = unique_name("Ada")
    await visitor.open_chat(name=name)

    # The visitor asks for a person: the bot says so, and the inbox shows it live, no reload.
    await visitor.say(ASK_FOR_PERSON)
    await visitor.expect_response("Connecting you to a person")
    # The page shows where the visitor stands, under the widget's header.
    status = visitor.page.locator(".handoff-status")
    await expect(status).to_contain_text(re.compile(r"Waiting for a person · number \d+ in the queue"), timeout=TIMEOUT)
    await expect(agent.row(name)).to_be_visible(timeout=10_000)
    await expect(agent.row(name).locator(".badge-reason")).to_have_text("Asked for a person")
    await expect(agent.page).to_have_title(re.compile(r"^\(\d+\) Inbox$"))

    # The agent sees the whole story, takes the conversation and answers.
    await agent.open(name)
    await expect(agent.message("visitor", ASK_FOR_PERSON)).to_be_visible()
    await expect(agent.message("bot", "Connecting you to a person")).to_be_visible()
    await expect(agent.page.locator(".details .headline")).not_to_be_empty()
    await agent.claim()
    await visitor.expect_response("Sarah joined the chat")
    await expect(status).to_have_text("Chatting with Sarah from our team")
    await agent.reply("Hi, Sarah here. Let me check that for you.")
    await visitor.expect_response("Sarah here. Let me check that for you.")

    # The visitor answers; the agent sees it arrive in the open conversation.
    await visitor.say("Thanks! It's order 123456.")
    await expect(agent.message("visitor", "It's order 123456.")).to_be_visible(timeout=TIMEOUT)

    # Hand back: the visitor is told the assistant is back, and the bot answers again.
    await agent.hand_back("resolved", note="Checked the parcel with the courier.", facts={"order_number": "123456"})
    await visitor.expect_response("back with the assistant")
    await expect(status).to_be_hidden()
    await expect(agent.page.locator(".timeline")).to_contain_text("handed back to the bot")
    await visitor.say("what are your opening hours")
    await visitor.expect_response("Monday to Friday")
    await expect(agent.message("bot", "Monday to Friday")).to_be_visible(timeout=TIMEOUT)
    assert visitor.page.dialogs == [] and agent.page.errors == []  # type: ignore[attr-defined]


async def test_an_internal_note_never_reaches_the_widget(new_page, base_url):
    agent = InboxPage(await new_page(), base_url)
    await agent.login("tom", PASSWORD)
    visitor = VisitorPage(await new_page(), base_url)
    name = unique_name("Noor")
    await visitor.open_chat(name=name)
    await visitor.say(ASK_FOR_PERSON)
    await expect(agent.row(name)).to_be_visible(timeout=10_000)
    await agent.open(name)
    await agent.claim()

    secret = "NOTE-ONLY: refund approved by Bea, do not promise a date"
    await agent.note(secret)
    note = agent.page.locator(".transcript .msg-note").filter(has_text=secret)
    await expect(note).to_contain_text("Internal note")
    # Notes look different from replies: the yellow note bubble, never the agent's blue one.
    assert await note.locator(".bubble").evaluate("e => getComputedStyle(e).backgroundColor") != \
        await agent.page.locator(".composer .send").evaluate("e => getComputedStyle(e).backgroundColor")

    # A reply sent after the note arrives; the note, sent first, never does.
    await agent.reply("Good news: your refund is on its way.")
    await visitor.expect_response("your refund is on its way")
    await visitor.page.reload()  # and a reload (replay of missed messages) does not bring it either
    await visitor.expect_response("your refund is on its way")
    assert "NOTE-ONLY" not in await visitor.all_text()


async def test_visitor_html_is_shown_as_text_and_never_runs(new_page, base_url):
    payload = "<img src=x onerror=alert(1)>"
    name = unique_name("<b>Eve</b>")
    visitor = Visitor(base_url)
    await visitor.connect()
    try:
        await visitor.say(ASK_FOR_PERSON, custom={"language": "en", "name": name})
        await visitor.wait_text("Connecting you to a person")
        await visitor.wait_text("in the queue")  # the queue notice follows: let it land first
        await visitor.say(f"hello {payload} <script>alert(2)</script>", custom={"language": "en", "name": name})

        agent = InboxPage(await new_page(), base_url)
        await agent.login("sarah", PASSWORD)
        await expect(agent.row(name)).to_be_visible(timeout=TIMEOUT)
        await expect(agent.row(name).locator(".row-preview")).to_contain_text(payload)
        await agent.open(name)
        bubble = agent.message("visitor", payload)
        await expect(bubble).to_have_text(f"hello {payload} <script>alert(2)</script>")
        await expect(agent.page.locator(".conv-head h2")).to_have_text(name)
        # Nothing was parsed as HTML anywhere: no image, script or bold element came from visitor text.
        assert await agent.page.locator(".transcript img, .transcript script, .rows b, .conv-head b").count() == 0
        await agent.page.wait_for_timeout(300)  # give a broken image's onerror the chance to fire
        assert agent.page.dialogs == []  # type: ignore[attr-defined]
        assert agent.page.errors == []  # type: ignore[attr-defined]
    finally:
        await leave(visitor)


async def test_inbox_falls_back_to_polling_when_the_event_stream_is_blocked(new_page, base_url):
    page = await new_page()
    blocked: list[str] = []

    async def block(route: Route) -> None:
        blocked.append(route.request.url)
        await route.abort()

    # Only the stream: /api/events/poll must stay reachable.
    await page.route(lambda url: urlparse(url).path == "/api/events", block)
    agent = InboxPage(page, base_url)
    await agent.login("sarah", PASSWORD)
    await expect(page.locator(".conn")).to_have_text("Live (polling)", timeout=TIMEOUT)
    assert blocked, "the inbox never tried the event stream"

    name = unique_name("Pia")
    visitor = Visitor(base_url)
    await visitor.connect()
    try:
        await visitor.say(ASK_FOR_PERSON, custom={"language": "en", "name": name})
        await expect(agent.row(name)).to_be_visible(timeout=TIMEOUT)
        await agent.open(name)
        await agent.claim()
        await visitor.say("are you still there?", custom={"language": "en", "name": name})
        await expect(agent.message("visitor", "are you still there?")).to_be_visible(timeout=TIMEOUT)
        await agent.reply("Yes, I'm here.")
        await visitor.wait_text("Yes, I'm here.")
    finally:
        await leave(visitor)


async def test_a_failed_reply_can_be_retried_and_a_draft_survives_a_reload(new_page, base_url):
    page = await new_page()
    agent = InboxPage(page, base_url)
    await agent.login("sarah", PASSWORD)
    name = unique_name("Ola")
    visitor = Visitor(base_url)
    await visitor.connect()
    try:
        await visitor.say(ASK_FOR_PERSON, custom={"language": "en", "name": name})
        await agent.open(name)
        await agent.claim()

        # The network drops every reply: the message stays on screen, marked, with Retry.
        offline = True

        async def flaky(route: Route) -> None:
            if offline and route.request.method == "POST":
                await route.abort("internetdisconnected")
            else:
                await route.continue_()

        await page.route("**/api/conversations/*/messages", flaky)
        await agent.composer.fill("Sorry for the wait, looking into it now.")
        await agent.composer.press("Enter")
        failed = page.locator(".transcript .msg.pending.failed")
        await expect(failed).to_contain_text("Sorry for the wait", timeout=TIMEOUT)
        offline = False
        await failed.get_by_role("button", name="Retry").click()
        await expect(agent.message("agent", "Sorry for the wait")).to_have_count(1, timeout=TIMEOUT)
        await expect(page.locator(".transcript .msg.pending")).to_have_count(0)
        await visitor.wait_text("Sorry for the wait")
        assert sum("Sorry for the wait" in t for t in visitor.texts()) == 1

        # Something typed but not sent is still there after a reload.
        await agent.composer.fill("Half-written answer about the refund")
        await page.wait_for_timeout(400)  # drafts are saved 250 ms after the last keystroke
        await page.reload()
        await expect(page.locator(".conv-head h2")).to_have_text(name, timeout=TIMEOUT)
        await expect(agent.composer).to_have_value("Half-written answer about the refund")
    finally:
        await leave(visitor)


async def test_claiming_a_conversation_someone_else_took_says_who_has_it(new_page, base_url, tom_api):
    page = await new_page()

    async def frozen(route: Route) -> None:  # Sarah's inbox hears nothing: her view goes stale
        await route.abort()

    name = unique_name("Ken")
    visitor = Visitor(base_url)
    await visitor.connect()
    try:
        await visitor.say(ASK_FOR_PERSON, custom={"language": "en", "name": name})
        await visitor.wait_text("Connecting you to a person")
        await page.route(re.compile(r"/api/events"), frozen)  # before the inbox opens its feed
        agent = InboxPage(page, base_url)
        await agent.login("sarah", PASSWORD)
        await agent.open(name)
        cid = await page.evaluate("decodeURIComponent(location.hash.slice(4))")
        await tom_api.ok("POST", f"/api/conversations/{cid}/claim")
        await page.locator(".conv-actions [data-action=claim]").click()
        await expect(page.locator(".toast")).to_have_text(re.compile(r"^Already assigned to Tom\b"), timeout=TIMEOUT)
        await expect(page.locator(".conv-head .chip-assigned")).to_have_text(re.compile(r"^Assigned to Tom\b"))
        await expect(page.locator(".composer-banner")).to_contain_text(re.compile(r"^Tom\b.* is handling this conversation"))
    finally:
        await leave(visitor)


async def test_keyboard_only_claim_reply_saved_reply_and_resolve(new_page, base_url):
    page = await new_page()
    agent = InboxPage(page, base_url)
    await agent.login("sarah", PASSWORD)
    name = unique_name("Kai")
    visitor = Visitor(base_url)
    await visitor.connect()
    try:
        await visitor.say(ASK_FOR_PERSON, custom={"language": "en", "name": name})
        await expect(agent.row(name)).to_be_visible(timeout=TIMEOUT)
        await agent.open(name)
        await page.locator(".transcript").click()  # focus out of any field: single keys are shortcuts

        await page.keyboard.press("a")
        await expect(page.locator(".conv-head .chip-assigned")).to_have_text("Assigned to you", timeout=TIMEOUT)
        await page.keyboard.press("Escape")
        await page.locator(".transcript").click()

        # Save a reply for reuse, then insert it with "/".
        shortcut = "greet" + unique_name("")[1:]
        await page.keyboard.press("r")
        await agent.composer.fill("Hi, thanks for waiting! I'm on it.")
        await page.get_by_role("button", name="Save for reuse…").click()
        dialog = page.locator("dialog[open]")
        await dialog.get_by_label("Shortcut").fill(shortcut)
        await dialog.get_by_role("button", name="Save").click()
        await expect(dialog).to_have_count(0)
        await agent.composer.fill("")
        await agent.composer.type(f"/{shortcut[:8]}")
        await expect(page.locator(".canned-item.active")).to_contain_text(f"/{shortcut}", timeout=TIMEOUT)
        await agent.composer.press("Enter")  # picks the saved reply
        await expect(agent.composer).to_have_value("Hi, thanks for waiting! I'm on it.", timeout=TIMEOUT)
        await agent.composer.press("Enter")  # sends it
        await visitor.wait_text("thanks for waiting! I'm on it.")

        await agent.composer.press("Escape")
        await page.keyboard.press("?")
        await expect(page.locator("dialog.shortcuts")).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(page.locator("dialog.shortcuts")).to_have_count(0)

        # Resolve asks first; what is typed lands in its note; Ctrl+Enter confirms.
        await page.keyboard.press("e")
        await expect(page.locator("dialog[open]")).to_contain_text("Resolve the conversation")
        await page.keyboard.type("Answered with the welcome reply")
        await page.keyboard.press("Control+Enter")
        await expect(page.locator("dialog[open]")).to_have_count(0, timeout=TIMEOUT)
        await expect(page.locator(".conv-head .chip-resolved")).to_be_visible(timeout=TIMEOUT)
        await page.keyboard.press("4")
        await expect(agent.row(name)).to_be_visible(timeout=TIMEOUT)
        await expect(page.locator(".timeline")).to_contain_text("resolved it")
        await expect(page.locator(".timeline")).to_contain_text("Answered with the welcome reply")
    finally:
        await leave(visitor)


async def test_a_saved_reply_list_opened_right_after_leaving_the_box_still_inserts_on_enter(new_page, base_url, tom_api):
    # Leaving the reply box closes the saved-reply list a moment later. An agent who clicks away and
    # straight back and types a /shortcut within that moment used to see the list vanish under the
    # cursor, and Enter then sent "/shortcut" to the visitor instead of inserting the reply.
    shortcut = "back" + unique_name("")[1:]
    await tom_api.ok("POST", "/api/canned", {"shortcut": shortcut, "text": "One moment, I am checking your order."})
    page = await new_page()
    agent = InboxPage(page, base_url)
    await agent.login("sarah", PASSWORD)
    name = unique_name("Noa")
    visitor = await queued_conversation(base_url, name)
    try:
        await expect(agent.row(name)).to_be_visible(timeout=TIMEOUT)
        await agent.open(name)
        await agent.claim()
        await agent.composer.focus()
        await page.evaluate("() => { const t = document.querySelector('.composer-input'); t.blur(); t.focus(); }")
        await agent.composer.type(f"/{shortcut}")
        await expect(page.locator(".canned-item.active")).to_contain_text(f"/{shortcut}", timeout=TIMEOUT)
        await page.wait_for_timeout(400)  # well past the close-on-leave delay
        await expect(page.locator(".canned-item.active")).to_be_visible()
        await agent.composer.press("Enter")
        await expect(agent.composer).to_have_value("One moment, I am checking your order.")
        await agent.composer.press("Enter")  # sends it
        await visitor.wait_text("I am checking your order.")
        assert not [t for t in visitor.texts() if shortcut in t], visitor.texts()
    finally:
        await leave(visitor)
