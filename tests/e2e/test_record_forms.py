"""The record forms on a phone (390x844): nothing scrolls sideways, the ICD-10 picker fills
the code and the name, vital signs are entered several at once, and the entry page offers
the correction. The chart page itself is another page's business: only its URL is checked."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Browsing, LiveServer, horizontal_overflow, sign_in
from tests.e2e.seed import DOCTOR

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def _register(page: Page) -> int:
    """A patient of the doctor's hospital, through the JSON API with the page's session."""
    page.goto("/")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    response = page.request.post(
        "/api/v1/patients",
        data={
            "name": "测试" + "".join(secrets.choice("甲乙丙丁戊己庚辛壬癸") for _ in range(3)),
            "sex": "2",
            "birth_date": "1956-03-08",
            "client_request_id": secrets.token_hex(8),
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status in (200, 201), response.text()
    patient_id: int = response.json()["patient"]["id"]
    return patient_id


def _fits(page: Page) -> None:
    assert page.evaluate("() => document.documentElement.clientWidth") == 390
    assert horizontal_overflow(page) == 0, page.url


def test_record_forms_on_a_phone(browsing: Browsing, live_server: LiveServer) -> None:
    page = browsing.new_page(device_scale_factor=3, **PHONE)
    sign_in(page, DOCTOR)
    patient = _register(page)
    chart = f"{live_server.url}/patients/{patient}/chart"

    page.goto(f"/patients/{patient}/records/new")
    _fits(page)
    for kind in ("encounter", "lab_result", "medication", "allergy"):
        page.goto(f"/patients/{patient}/records/new?kind={kind}")
        expect(page.locator("#entry-form")).to_be_visible()
        _fits(page)

    # The diagnosis: search by words, pick a code; Enter in the search box never saves.
    page.goto(f"/patients/{patient}/records/new?kind=diagnosis")
    _fits(page)
    search = page.locator("#icd10-q")
    search.fill("高血压")
    option = page.locator('#icd10-results button[data-code="I10"]')
    expect(option).to_be_visible()
    _fits(page)
    search.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/patients/{patient}/records/new?kind=diagnosis")
    assert len(browsing.contexts[-1].pages) == 1  # htmx answered; no lookup tab opened
    nothing = page.request.get(f"/api/v1/patients/{patient}/diagnoses").json()
    assert nothing["total"] == 0
    option.tap()
    expect(page.locator('#entry-form input[name="code"]')).to_have_value("I10")
    expect(page.locator('#entry-form input[name="name"]')).not_to_have_value("")
    expect(page.locator("#icd10-results button")).to_have_count(0)
    with page.expect_navigation():
        page.locator('#entry-form button[type="submit"]').tap()
    expect(page).to_have_url(chart)

    # Vital signs, several at once.
    page.goto(f"/patients/{patient}/records/new?kind=vital_sign")
    _fits(page)
    page.locator('input[name="temperature"]').fill("38.5")
    page.locator('input[name="bp_systolic"]').fill("150")
    page.locator('input[name="bp_diastolic"]').fill("92")
    with page.expect_navigation():
        page.locator('#entry-form button[type="submit"]').tap()
    expect(page).to_have_url(chart)
    vitals = page.request.get(f"/api/v1/patients/{patient}/vitals").json()["items"]
    assert {v["kind"] for v in vitals} == {"temperature", "bp_systolic", "bp_diastolic"}

    # A refused value shows the form again, naming it, on the phone too.
    page.goto(f"/patients/{patient}/records/new?kind=vital_sign")
    page.locator('input[name="heart_rate"]').fill("900")
    with page.expect_navigation():
        page.locator('#entry-form button[type="submit"]').tap()
    expect(page.locator('input[name="heart_rate"]')).to_have_attribute("aria-invalid", "true")
    _fits(page)

    # The entry page, its correction form and its history.
    diagnoses = page.request.get(f"/api/v1/patients/{patient}/diagnoses").json()["items"]
    page.goto(f"/records/diagnosis/{diagnoses[0]['id']}")
    _fits(page)
    form = page.locator("#correct-form")
    form.locator('select[name="status"]').select_option("provisional")
    form.locator('input[name="reason"]').fill("待复查确认")
    with page.expect_navigation():
        form.locator('button[type="submit"]').tap()
    expect(page.locator("#history .revision")).to_have_count(1)
    expect(page.locator("#history")).to_contain_text("待复查确认")
    _fits(page)
