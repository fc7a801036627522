"""Signing in through the /login form."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import LiveServer, sign_in, sign_out
from tests.e2e.seed import DOCTOR

pytestmark = pytest.mark.browser


def test_sign_in_lands_on_home_with_display_name(page: Page, live_server: LiveServer) -> None:
    sign_in(page, DOCTOR)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("header .who")).to_have_text(DOCTOR.display_name)
    expect(page.locator("main h1")).to_contain_text(DOCTOR.display_name)
    # Signed in: the session survives a reload, and /login sends us home.
    page.goto("/login")
    expect(page).to_have_url(f"{live_server.url}/")

    sign_out(page)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_wrong_password_shows_the_error(page: Page) -> None:
    sign_in(page, DOCTOR, password="Wrong-Password-2026")

    expect(page).to_have_url(re.compile(r"/login$"))
    error = page.locator('main .error[role="alert"]')
    expect(error).to_have_attribute("data-code", "bad_credentials")
    expect(error).to_have_text("用户名或密码不正确。")
    # The form comes back with the username kept and the password emptied.
    expect(page.locator('input[name="username"]')).to_have_value(DOCTOR.username)
    expect(page.locator('input[name="password"]')).to_have_value("")
    expect(page.locator("header .who")).to_have_count(0)
