"""Two colleagues of different institutions talk in a group conversation: a county doctor
on a desktop starts it from /messages, finding the provincial expert by the colleague
search; the expert, on a phone, opens it from the list; they exchange messages and each
sees the other's without reloading (pushed over the WebSocket)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Browsing, horizontal_overflow, sign_in
from tests.e2e.seed import GROUP_DOCTOR, GROUP_EXPERT

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
TITLE = "胸痛患者转诊前讨论（县医院与省医院心内科）"


def _start_group(doctor: Page, title: str) -> str:
    """The doctor starts a group with the expert from /messages; its id."""
    doctor.goto("/messages")
    doctor.locator(".colleague-search input[name=q]").press_sequentially("林群聊")
    found = doctor.locator("#colleague-results label.colleague", has_text=GROUP_EXPERT.display_name)
    found.locator("input").check()
    # Ticked, the colleague stays chosen whatever is searched next.
    expect(
        doctor.locator("#chosen-members label", has_text=GROUP_EXPERT.display_name)
    ).to_be_visible()
    doctor.fill('#form-create input[name="title"]', title)
    doctor.locator("#form-create button[type=submit]").click()
    expect(doctor).to_have_url(re.compile(r"/messages/\d+$"))
    return doctor.url.rsplit("/", 1)[1]


def test_two_colleagues_talk_without_reloading(browsing: Browsing) -> None:
    doctor = browsing.new_page(viewport={"width": 1280, "height": 800})
    sign_in(doctor, GROUP_DOCTOR)
    conversation = _start_group(doctor, TITLE)

    expert = browsing.new_page(**PHONE)
    sign_in(expert, GROUP_EXPERT)
    expert.goto("/messages")
    expect(expert.locator(".conversation-list .badge")).to_be_visible()
    assert horizontal_overflow(expert) == 0
    expert.locator(f'a[href="/messages/{conversation}"]').click()
    expect(expert).to_have_url(re.compile(rf"/messages/{conversation}$"))
    for side in (doctor, expert):
        expect(
            side.locator(
                f'#conversation[data-conversation="group:{conversation}"][data-live=connected]'
            )
        ).to_be_attached()
    expect(doctor.locator("#live-status .live-online")).to_contain_text(GROUP_EXPERT.display_name)

    doctor.fill('#form-message textarea[name="text"]', "患者心电图ST段压低，今天能否转上来？")
    doctor.locator("#form-message button[type=submit]").click()
    question = expert.locator(".message .message-text", has_text="今天能否转上来")
    expect(question).to_be_visible()
    expert.fill('#form-message textarea[name="text"]', "可以，下午两点前到省医院心内科")
    expert.locator("#form-message button[type=submit]").click()
    answer = doctor.locator(".message .message-text", has_text="下午两点前到省医院心内科")
    expect(answer).to_be_visible()
    # Sent over the socket: no reload, the form cleared, the own message shown once.
    expect(expert).to_have_url(re.compile(rf"/messages/{conversation}$"))
    expect(expert.locator('#form-message textarea[name="text"]')).to_have_value("")
    expect(expert.locator(".message.mine .message-text")).to_have_count(1)
    expect(doctor).to_have_url(re.compile(rf"/messages/{conversation}$"))
    assert horizontal_overflow(expert) == 0


def test_the_bell_rings_without_waiting_for_its_poll(browsing: Browsing) -> None:
    """The expert, on another page, sees the new conversation's notification counted at
    once: pushed over /ws (the badge would otherwise poll only every 60 s)."""
    expert = browsing.new_page(viewport={"width": 1280, "height": 800})
    sign_in(expert, GROUP_EXPERT)
    expert.goto("/notifications")
    expect(expert.locator("body[data-bell=live]")).to_be_attached()
    badge = expert.locator("#notification-badge")
    before = int(badge.get_attribute("data-unread") or 0)
    expert.evaluate("window.xtSamePage = true")  # gone if the page reloads

    doctor = browsing.new_page(viewport={"width": 1280, "height": 800})
    sign_in(doctor, GROUP_DOCTOR)
    _start_group(doctor, "随访安排（县医院与省医院）")
    doctor.fill('#form-message textarea[name="text"]', "明天上午随访，麻烦看一下")
    doctor.locator("#form-message button[type=submit]").click()
    expect(doctor.locator(".message.mine .message-text")).to_have_count(1)

    # Well within the poll's 60 s, and without a reload.
    expert.wait_for_function(
        "(n) => Number(document.querySelector('#notification-badge')?.dataset.unread || 0) > n",
        arg=before,
        timeout=15_000,
    )
    assert expert.evaluate("window.xtSamePage") is True
