"""A browser test books an up-referral into a slot and the receiver checks the patient in:
a county doctor on a phone registers a patient, opens "转诊" from the chart, picks the
provincial hospital, its cardiology department and a free slot (the picker is an htmx
fragment), and sends; the provincial referral desk (转诊办) accepts and checks the patient
in; the doctor sees the referral arrived."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Browsing, horizontal_overflow, sign_in
from tests.e2e.seed import CARDIOLOGY, REFER_DOCTOR, REFERRAL_DESK

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
RESIDENT_ID = "410122195803120018"  # 1958-03-12, male, 中牟县


def _act(page: Page, action: str) -> None:
    page.locator(f"#form-{action} button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/referrals/\d+$"))


def test_an_up_referral_is_booked_and_the_patient_checked_in(browsing: Browsing) -> None:
    doctor = browsing.new_page(**PHONE)
    sign_in(doctor, REFER_DOCTOR)
    doctor.goto("/patients/new")
    doctor.fill('input[name="name"]', "孙永福")
    doctor.select_option('select[name="sex"]', "1")
    doctor.fill('input[name="birth_date"]', "1958-03-12")
    doctor.fill('input[name="resident_id"]', RESIDENT_ID)
    doctor.locator("form button.primary").first.click()
    expect(doctor).to_have_url(re.compile(r"/patients/\d+\?done=registered$"))
    patient_id = re.findall(r"/patients/(\d+)", doctor.url)[0]

    doctor.goto(f"/patients/{patient_id}/chart")
    expect(doctor.locator("#referrals")).to_be_visible()
    assert horizontal_overflow(doctor) == 0
    doctor.get_by_role("link", name="转诊", exact=True).click()
    expect(doctor).to_have_url(re.compile(rf"/patients/{patient_id}/referrals/new$"))

    # Choosing the institution brings its departments and free places (htmx).
    doctor.select_option('select[name="target_institution_id"]', index=1)
    department = doctor.locator('select[name="target_department_id"]')
    expect(department.locator("option", has_text=CARDIOLOGY)).to_have_count(1)
    department.select_option(label=CARDIOLOGY)
    slot = doctor.locator('#slot-picker input[name="slot_id"]:not([value=""])').first
    expect(slot).to_be_visible()
    slot.check()
    chosen = slot.locator("xpath=..").inner_text()
    when = re.search(r"\d{4}-\d{2}-\d{2} \S+ \d{2}:\d{2}", chosen)
    assert when, chosen
    doctor.fill('textarea[name="reason"]', "胸痛反复发作，需心内科进一步诊治")
    doctor.fill('input[name="diagnosis_code"]', "I20.9")
    doctor.fill('textarea[name="summary"]', "活动后胸痛2周，含服硝酸甘油可缓解。")
    assert horizontal_overflow(doctor) == 0
    doctor.locator("button.send-referral").click()
    expect(doctor).to_have_url(re.compile(r"/referrals/\d+$"))
    referral = doctor.url.rsplit("/", 1)[1]
    expect(doctor.locator("h1 .state-requested")).to_be_visible()
    expect(doctor.locator("#place .slot-time")).to_contain_text(
        when.group(0).split(" ")[0] + " " + when.group(0).rsplit(" ", 1)[1]
    )
    assert horizontal_overflow(doctor) == 0

    desk = browsing.new_page()
    sign_in(desk, REFERRAL_DESK)
    desk.goto("/referrals?view=inbox")
    desk.locator(f'a[href="/referrals/{referral}"]').first.click()
    expect(desk).to_have_url(re.compile(rf"/referrals/{referral}$"))
    expect(desk.get_by_text("胸痛反复发作，需心内科进一步诊治")).to_be_visible()
    _act(desk, "accept")
    expect(desk.locator("h1 .state-accepted")).to_be_visible()
    _act(desk, "check_in")
    expect(desk.locator("h1 .state-arrived")).to_be_visible()

    doctor.goto("/referrals?view=sent")
    row = doctor.locator(f'tr[data-referral="{referral}"]')
    expect(row.locator(".state-arrived")).to_be_visible()
    assert horizontal_overflow(doctor) == 0
    doctor.goto(f"/referrals/{referral}/chain")
    expect(doctor.locator(".chain-link.current .state-arrived")).to_be_visible()
    assert horizontal_overflow(doctor) == 0
