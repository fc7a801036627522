"""Chinese by default, English on request, kept as the user's preference."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Browsing, LiveServer, html_lang, sign_in, sign_out
from tests.e2e.seed import LANG_USER

pytestmark = pytest.mark.browser


def _signin_button(page: Page) -> str:
    return page.locator('form[action="/login"] button[type="submit"]').inner_text().strip()


def test_chinese_is_the_default(browsing: Browsing) -> None:
    # A browser that asks for a language the platform does not have gets the default.
    page = browsing.new_page(locale="fr-FR")
    page.goto("/login")
    assert html_lang(page) == "zh-CN"
    assert _signin_button(page) == "登录"


def test_switch_to_english_persists_across_navigation_and_sign_in(
    page: Page, browsing: Browsing, live_server: LiveServer
) -> None:
    page.goto("/login")
    assert html_lang(page) == "zh-CN"
    assert _signin_button(page) == "登录"

    sign_in(page, LANG_USER)
    expect(page).to_have_url(f"{live_server.url}/")
    assert html_lang(page) == "zh-CN"
    expect(page.locator("main h1")).to_contain_text("欢迎")

    page.locator('a[data-locale="en"]').click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("main h1")).to_have_text(f"Welcome, {LANG_USER.display_name}")
    # The current language is shown, not linked; the other one is offered.
    expect(page.locator('a[data-locale="en"]')).to_have_count(0)
    expect(page.locator('a[data-locale="zh_CN"]')).to_have_count(1)

    # Navigation keeps it.
    page.goto("/account/password")
    assert html_lang(page) == "en"
    page.goto("/")
    assert html_lang(page) == "en"

    # Signing out and in again in the same browser keeps it.
    sign_out(page)
    assert html_lang(page) == "en"
    assert _signin_button(page) == "Sign in"
    sign_in(page, LANG_USER)
    expect(page).to_have_url(f"{live_server.url}/")
    assert html_lang(page) == "en"

    # A fresh browser (no cookies) starts in Chinese, and signing in brings back the
    # user's preference.
    other = browsing.new_page()
    other.goto("/login")
    assert html_lang(other) == "zh-CN"
    sign_in(other, LANG_USER)
    expect(other).to_have_url(f"{live_server.url}/")
    assert html_lang(other) == "en"
    expect(other.locator("main h1")).to_have_text(f"Welcome, {LANG_USER.display_name}")

    # And switching back is kept too.
    other.locator('a[data-locale="zh_CN"]').click()
    expect(other.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(other.locator("main h1")).to_have_text(f"欢迎，{LANG_USER.display_name}")
