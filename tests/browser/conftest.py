"""Browser fixtures: Debian's Chromium driven by Playwright's async API (pytest-asyncio runs the
tests), a fresh browser context per page (fresh storage, Google Fonts blocked: the widget's CSS
imports them), and a screenshot of every page into the ``artifacts`` directory when a test fails.

Set HANDOFF_BROWSER_BASE_URL to run against a stack that is already up (agents sarah/tom/boss with
``tests.conftest.PASSWORD``) instead of the ``stack`` fixture; handy while working on the UI.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.conftest import PASSWORD
from tests.support import AgentClient

CHROMIUM = os.environ.get("HANDOFF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    # Remember each phase's outcome on the test item, so fixtures can tell a failure at teardown.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def base_url(request: pytest.FixtureRequest) -> str:
    url = os.environ.get("HANDOFF_BROWSER_BASE_URL")
    if url:
        return url.rstrip("/")
    return str(request.getfixturevalue("stack").gateway_url)


@pytest.fixture
async def tom_api(base_url: str) -> AsyncIterator[AgentClient]:
    """Tom, using the inbox API directly (like tests.conftest's ``tom``, but on ``base_url``)."""
    client = AgentClient(base_url)
    await client.login("tom", PASSWORD)
    yield client
    await client.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: the browser tests need it (apt-get install chromium)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


NewPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def new_page(browser: Browser, request: pytest.FixtureRequest, artifacts: Path) -> AsyncIterator[NewPage]:
    """``await new_page(width=1280, height=800)``: a page in its own fresh context. Every page
    records browser dialogs (``page.dialogs``), page errors and console errors."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    async def make(width: int = 1280, height: int = 800) -> Page:
        ctx = await browser.new_context(viewport={"width": width, "height": height})
        await ctx.route(re.compile(r"^https?://fonts\.(googleapis|gstatic)\.com/"), lambda route: route.abort())
        contexts.append(ctx)
        page = await ctx.new_page()
        page.dialogs = []  # type: ignore[attr-defined]
        page.errors = []  # type: ignore[attr-defined]

        async def on_dialog(dialog: Any) -> None:
            page.dialogs.append(f"{dialog.type}: {dialog.message}")  # type: ignore[attr-defined]
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]
        pages.append(page)
        return page

    yield make

    failed = any(getattr(request.node, f"rep_{when}", None) and getattr(request.node, f"rep_{when}").failed
                 for when in ("setup", "call"))
    if failed:
        for i, page in enumerate(pages):
            try:
                await page.screenshot(path=str(artifacts / f"{request.node.name}-{i}.png"), full_page=False)
            except Exception:
                pass
    for ctx in contexts:
        await ctx.close()
