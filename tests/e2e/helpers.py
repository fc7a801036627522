"""What the browser tests do more than once."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.seed import PASSWORD, Account

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-results"
TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class LiveServer:
    url: str
    data_dir: Path
    log: Path


class Browsing:
    """Opens browser contexts on the live server; closes them (with a screenshot on failure)."""

    def __init__(self, browser: Browser, server: LiveServer, request: pytest.FixtureRequest):
        self.browser = browser
        self.server = server
        self.request = request
        self.contexts: list[BrowserContext] = []

    def new_page(self, *, locale: str = "zh-CN", **options: object) -> Page:
        """A fresh context (no cookies) and page; ``locale`` sets Accept-Language."""
        context = self.browser.new_context(
            base_url=self.server.url,
            locale=locale,
            **options,  # type: ignore[arg-type]
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        return context.new_page()

    def close(self) -> None:
        report = getattr(self.request.node, "report_call", None)
        failed = report is not None and report.failed
        for index, context in enumerate(self.contexts):
            if failed:
                ARTIFACTS.mkdir(exist_ok=True)
                for n, page in enumerate(context.pages):
                    name = f"{self.request.node.name}-{index}-{n}.png".replace("/", "_")
                    with contextlib.suppress(Exception):  # best effort only
                        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
            context.close()


def sign_in(page: Page, account: Account, password: str = PASSWORD) -> None:
    """Fill and submit the /login form; the caller checks where it lands."""
    page.goto("/login")
    form = page.locator('form[action="/login"]')
    form.locator('input[name="username"]').fill(account.username)
    form.locator('input[name="password"]').fill(password)
    with page.expect_navigation():
        form.locator('button[type="submit"]').click()


def sign_out(page: Page) -> None:
    page.locator('form[action="/logout"] button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))
    page.wait_for_load_state()


def html_lang(page: Page) -> str:
    return page.locator("html").get_attribute("lang") or ""


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when nothing scrolls)."""
    width: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )
    return max(0, width)
