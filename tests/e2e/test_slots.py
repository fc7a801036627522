"""The referral desk publishes slots (号源) from a phone (390x844): a weekly template
through the form, "generate now", the week calendar with the slot's places — nothing wider
than the screen; on a wide screen the week is seven columns side by side. The seed's own
morning clinics share the calendar, so the new slot is found by its hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import Browsing, LiveServer, horizontal_overflow, sign_in
from tests.e2e.seed import SLOT_DESK

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
CHINA = timezone(timedelta(hours=8))


def test_the_desk_publishes_slots_from_a_phone(browsing: Browsing, live_server: LiveServer) -> None:
    page = browsing.new_page(device_scale_factor=3, **PHONE)
    sign_in(page, SLOT_DESK)
    page.locator("button.menu-toggle").tap()
    page.locator('#mainnav a[href="/slots"]').tap()
    expect(page.locator("h1")).to_have_text("号源")
    assert horizontal_overflow(page) == 0

    page.locator('a[href="/slots/templates"]').tap()
    expect(page.locator("h1")).to_have_text("每周模板")
    tomorrow = (datetime.now(UTC).astimezone(CHINA) + timedelta(days=1)).date()
    form = page.locator('form[action="/slots/templates"]')
    form.locator('select[name="department_id"]').select_option(label="心血管内科")
    form.locator('select[name="weekday"]').select_option(str(tomorrow.weekday()))
    form.locator('input[name="start_time"]').fill("08:00")
    form.locator('input[name="end_time"]').fill("11:30")
    form.locator('input[name="capacity"]').fill("12")
    form.locator('input[name="referral_reserved"]').fill("4")
    form.locator('input[name="green_quota"]').fill("2")
    assert horizontal_overflow(page) == 0
    with page.expect_navigation():
        form.locator('button[type="submit"]').tap()
    # The seed's morning cardiology clinics (for the referral walk) are templates too.
    mine = page.locator("li.template", has_text="08:00–11:30")
    expect(mine).to_have_count(1)
    assert horizontal_overflow(page) == 0

    page.goto("/slots")
    with page.expect_navigation():
        page.locator('form[action="/slots/generate"] button').tap()
    expect(page.locator("[data-generated]")).to_contain_text("已按模板生成 4 个号源")
    if tomorrow.weekday() == 0:  # tomorrow starts next week
        page.locator('a[rel="next"]').tap()
    day = page.locator(f'section.slot-day[data-day="{tomorrow.isoformat()}"]')
    slot = day.locator("article.slot", has_text="08:00–11:30")
    expect(slot).to_have_count(1)
    expect(slot).to_contain_text("已约 0/12")
    expect(slot).to_contain_text("转诊预留 4")
    expect(slot).to_contain_text("绿色通道 0/2")
    slot.scroll_into_view_if_needed()
    expect(slot).to_be_in_viewport()
    assert horizontal_overflow(page) == 0

    wide = browsing.new_page(viewport={"width": 1280, "height": 900})
    sign_in(wide, SLOT_DESK)
    wide.goto("/slots")
    days = wide.locator("section.slot-day")
    expect(days).to_have_count(7)
    tops = {round(days.nth(i).bounding_box()["y"]) for i in range(7)}  # type: ignore[index]
    assert len(tops) == 1  # seven columns on one row
    assert horizontal_overflow(wide) == 0
