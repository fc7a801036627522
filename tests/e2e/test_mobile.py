"""A phone (390x844): nothing scrolls sideways, the menu toggle opens the navigation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import Browsing, LiveServer, horizontal_overflow, sign_in
from tests.e2e.seed import MOBILE_USER

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def test_login_and_home_fit_a_phone(browsing: Browsing, live_server: LiveServer) -> None:
    page = browsing.new_page(device_scale_factor=3, **PHONE)

    page.goto("/login")
    assert page.evaluate("() => document.documentElement.clientWidth") == 390
    assert horizontal_overflow(page) == 0
    expect(page.locator('input[name="username"]')).to_be_in_viewport()

    sign_in(page, MOBILE_USER)
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("header .who")).to_have_text(MOBILE_USER.display_name)
    assert horizontal_overflow(page) == 0

    nav = page.locator("#mainnav")
    toggle = page.locator("button.menu-toggle")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()

    toggle.tap()
    expect(nav).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav.locator('a[href="/"]')).to_be_visible()
    assert horizontal_overflow(page) == 0

    toggle.tap()
    expect(nav).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")


def test_notification_centre_fits_a_phone(browsing: Browsing, live_server: LiveServer) -> None:
    page = browsing.new_page(device_scale_factor=3, **PHONE)
    sign_in(page, MOBILE_USER)
    bell = page.locator("#notification-badge")
    expect(bell).to_be_visible()
    expect(bell.locator(".badge")).to_have_text("1")
    assert horizontal_overflow(page) == 0

    bell.tap()
    expect(page).to_have_url(f"{live_server.url}/notifications")
    item = page.locator("li.notif.unread")
    expect(item).to_have_count(1)
    assert horizontal_overflow(page) == 0

    item.locator("a").tap()  # marked read, then on to its subject
    expect(page).to_have_url(f"{live_server.url}/account")
    expect(page.locator("#notification-badge .badge")).to_have_count(0)
    page.goto("/notifications")
    expect(page.locator("li.notif.read")).to_have_count(1)
    assert horizontal_overflow(page) == 0
