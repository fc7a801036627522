"""Three users walk a consultation: a county doctor asks from the patient's chart (on a
phone), the provincial centre's coordinator accepts and assigns the cardiologist, the two
exchange a photo and messages, the cardiologist (on a phone too) writes an opinion and signs
the report, and the doctor rates it."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Browsing, horizontal_overflow, sign_in
from tests.e2e.seed import CONSULT_DOCTOR, COORDINATOR, EXPERT

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
RESIDENT_ID = "410122196207150039"  # 1962-07-15, male, 中牟县


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (240, 240, 220)).save(out, "JPEG")
    return out.getvalue()


def _act(page: Page, action: str) -> None:
    page.locator(f"#form-{action} button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/consultations/\d+$"))


def test_three_users_walk_a_consultation(browsing: Browsing) -> None:
    applicant = browsing.new_page(**PHONE)
    sign_in(applicant, CONSULT_DOCTOR)
    applicant.goto("/patients/new")
    applicant.fill('input[name="name"]', "刘建军")
    applicant.select_option('select[name="sex"]', "1")
    applicant.fill('input[name="birth_date"]', "1962-07-15")
    applicant.fill('input[name="resident_id"]', RESIDENT_ID)
    applicant.locator("form button.primary").first.click()
    expect(applicant).to_have_url(re.compile(r"/patients/\d+\?done=registered$"))
    patient_id = re.findall(r"/patients/(\d+)", applicant.url)[0]
    applicant.goto(f"/patients/{patient_id}/chart")
    applicant.locator('a[href$="/consultations/new"]').click()
    applicant.fill('input[name="purpose"]', "明确胸痛原因")
    applicant.fill('textarea[name="clinical_summary"]', "反复胸痛2周，活动后加重。")
    applicant.fill('textarea[name="questions"]', "是否需要冠脉造影？")
    applicant.select_option('select[name="specialty"]', "cardiology")
    applicant.select_option('select[name="target_institution_id"]', index=1)
    assert horizontal_overflow(applicant) == 0
    applicant.locator('button[name="submit"][value="now"]').click()
    expect(applicant).to_have_url(re.compile(r"/consultations/\d+$"))
    consultation = applicant.url.split("/consultations/", 1)[1]
    expect(applicant.locator("h1 .state-submitted")).to_be_visible()

    coordinator = browsing.new_page()
    sign_in(coordinator, COORDINATOR)
    coordinator.goto(f"/consultations/{consultation}")
    coordinator.locator('#form-accept input[name="experts"]').first.check()
    _act(coordinator, "accept")
    expect(coordinator.locator("h1 .state-accepted")).to_be_visible()

    # The cardiologist works from a phone: the worklist, the shared request, the report.
    expert = browsing.new_page(**PHONE)
    sign_in(expert, EXPERT)
    expert.goto("/consultations?view=worklist")
    assert horizontal_overflow(expert) == 0
    expert.locator(f'a[href="/consultations/{consultation}"]').first.click()
    expect(expert).to_have_url(re.compile(rf"/consultations/{consultation}$"))
    _act(expert, "start")

    # The doctor sends a photo and a note from the phone; the expert's open page shows
    # them without a reload (pushed over the WebSocket, or polled without it), and the
    # answer comes back the same way.
    applicant.goto(f"/consultations/{consultation}")
    for side in (applicant, expert):
        expect(side.locator("#conversation[data-live=connected]")).to_be_attached()
    # Each sees the other here, and the doctor sees the cardiologist typing.
    expect(applicant.locator("#live-status .live-online")).to_contain_text(EXPERT.display_name)
    expect(expert.locator("#live-status .live-online")).to_contain_text(CONSULT_DOCTOR.display_name)
    expert.locator('#form-message textarea[name="text"]').press_sequentially("稍等")
    expect(applicant.locator("#live-status .live-typing")).to_contain_text(EXPERT.display_name)
    expert.fill('#form-message textarea[name="text"]', "")
    applicant.fill('#form-message textarea[name="text"]', "附心电图，请看ST段")
    applicant.set_input_files(
        '#form-message input[name="file"]',
        files=[{"name": "心电图.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}],
    )
    applicant.locator("#form-message button[type=submit]").click()
    expect(applicant).to_have_url(re.compile(r"/consultations/\d+#conversation$"))
    note = expert.locator(".message .message-text", has_text="附心电图，请看ST段")
    expect(note).to_be_visible(timeout=15_000)
    photo = expert.locator(".message-image img").last
    expect(photo).to_be_visible()
    assert photo.evaluate("async img => { await img.decode(); return img.naturalWidth > 0; }")
    expert.fill('#form-message textarea[name="text"]', "收到，ST段压低0.1mV")
    expert.locator("#form-message button[type=submit]").click()
    answer = applicant.locator(".message .message-text", has_text="收到，ST段压低0.1mV")
    expect(answer).to_be_visible(timeout=15_000)
    # A text sent over the socket stays on the page (no reload), the form is cleared for
    # the next one, and the expert's own message shows on the expert's page too.
    expect(expert).to_have_url(re.compile(rf"/consultations/{consultation}$"))
    expect(expert.locator('#form-message textarea[name="text"]')).to_have_value("")
    mine = expert.locator(".message .message-text", has_text="收到，ST段压低0.1mV")
    expect(mine).to_have_count(1)
    assert horizontal_overflow(applicant) == 0

    expert.fill('#form-opinion textarea[name="text"]', "考虑稳定型心绞痛。")
    _act(expert, "opinion")
    expert.fill('#form-sign textarea[name="impression"]', "稳定型心绞痛可能性大")
    expert.fill('#form-sign textarea[name="recommendations"]', "建议冠脉CTA，规律服药。")
    _act(expert, "sign")
    expect(expert.locator("h1 .state-report_signed")).to_be_visible()
    assert horizontal_overflow(expert) == 0

    applicant.goto(f"/consultations/{consultation}")
    expect(applicant.get_by_text("稳定型心绞痛可能性大")).to_be_visible()
    applicant.select_option('#form-complete select[name="rating"]', "5")
    _act(applicant, "complete")
    expect(applicant.locator("h1 .state-completed")).to_be_visible()
    assert horizontal_overflow(applicant) == 0
