"""An imaging read in the browser: the junior radiologist opens the read from the
worklist, starts it, fills the report from the CT chest template and signs it as
preliminary; the senior radiologist countersigns it (final); the county doctor sees the
final report on the read and in the patient's chart. Before reporting, the radiologist opens
the shared study in the viewer from the read, scrolls it, changes the window and opens MPR
(the viewer's full walk is tests/e2e/test_viewer.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import Browsing, sign_in
from tests.e2e.seed import PASSWORD, Account
from tests.e2e.seed_reads import JUNIOR, READ_DOCTOR, READ_PATIENT, SENIOR, SLICES
from tests.e2e.viewer_steps import LIT, centre, drag, until
from xietong.identity.roles import Role

pytestmark = pytest.mark.browser

RADIOLOGIST = Account(JUNIOR[0], JUNIOR[1], Role.RADIOLOGIST)
SENIOR_RADIOLOGIST = Account(SENIOR[0], SENIOR[1], Role.RADIOLOGIST)
DOCTOR = Account(READ_DOCTOR[0], READ_DOCTOR[1], Role.APPLICANT_DOCTOR)
IMPRESSION = "右肺上叶结节，约8mm，建议3个月后复查胸部CT。"


def _act(page: Page, action: str) -> None:
    page.locator(f"#form-{action} button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/reads/\d+$"))


def _look_at_the_study(page: Page, read_id: str) -> None:
    """From the read to the viewer: scroll, window/level, MPR; then back to the read."""
    page.locator("a.open-viewer").first.click()
    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("data-ready", "true")
    expect(viewer).to_have_attribute("data-loaded", str(SLICES))
    first = int(viewer.get_attribute("data-slice") or "0")
    axial = centre(page, '[data-view="axial"] canvas')
    page.mouse.move(*axial)
    page.mouse.wheel(0, 120)
    expect(viewer).to_have_attribute("data-slice", str(first + 1))
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(viewer).to_have_attribute("data-slice", str(first - 1))
    page.locator('.viewer-modes button[data-mode="wl"]').click()
    drag(page, axial, 80, 40)
    until(page, "d.ww > 400 && d.wc > 40")
    page.locator("#viewer-preset").select_option("-600,1500")  # lung
    expect(viewer).to_have_attribute("data-wc", "-600")
    expect(viewer).to_have_attribute("data-ww", "1500")
    page.locator("#viewer-layout").click()
    expect(viewer).to_have_attribute("data-layout", "mpr")
    for view in ("coronal", "sagittal"):
        expect(page.locator(f'[data-view="{view}"] canvas')).to_be_visible()
        assert page.evaluate(LIT, f'[data-view="{view}"] canvas') > 0.05, view
    page.locator(f'.breadcrumbs a[href="/reads/{read_id}"]').click()
    expect(page).to_have_url(re.compile(rf"/reads/{read_id}$"))


def test_a_read_is_reported_countersigned_and_returned(browsing: Browsing) -> None:
    radiologist = browsing.new_page(viewport={"width": 1280, "height": 800})
    sign_in(radiologist, RADIOLOGIST, PASSWORD)
    radiologist.goto("/reads")
    row = radiologist.locator("table.reads tbody tr", has_text=READ_PATIENT)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("CT")
    row.locator("a").first.click()
    expect(radiologist).to_have_url(re.compile(r"/reads/\d+$"))
    read_url = radiologist.url
    read_id = read_url.rsplit("/", 1)[1]
    expect(radiologist.locator("a.open-viewer")).to_have_attribute(
        "href", re.compile(rf"^/imaging/studies/\d+/view\?read={read_id}$")
    )
    _act(radiologist, "start")
    _look_at_the_study(radiologist, read_id)
    radiologist.select_option("#template-picker", "ct_chest")
    radiologist.locator("#use-template").click()
    expect(radiologist).to_have_url(re.compile(r"template=ct_chest"))
    form = radiologist.locator("#form-sign_preliminary")
    expect(form.locator('input[name="template_key"]')).to_have_value("ct_chest")
    expect(form.locator('textarea[name="findings"]')).not_to_be_empty()
    form.locator('textarea[name="findings"]').fill("右肺上叶见一实性结节，直径约8mm，边缘光整。")
    form.locator('textarea[name="impression"]').fill(IMPRESSION)
    _act(radiologist, "sign_preliminary")
    expect(radiologist.locator('article.read-report[data-status="preliminary"]')).to_be_visible()
    expect(radiologist.locator("#form-finalise")).to_be_visible()
    expect(radiologist.locator("#form-countersign")).to_have_count(0)

    senior = browsing.new_page(viewport={"width": 1280, "height": 800})
    sign_in(senior, SENIOR_RADIOLOGIST, PASSWORD)
    senior.goto("/reads?state=preliminary")
    senior.locator("table.reads tbody tr", has_text=READ_PATIENT).locator("a").first.click()
    expect(senior).to_have_url(read_url)
    expect(senior.locator("dd.impression")).to_have_text(IMPRESSION)
    senior.locator('#form-countersign input[name="note"]').fill("同意")
    _act(senior, "countersign")
    final = senior.locator('article.read-report[data-status="final"]')
    expect(final).to_be_visible()
    expect(final.locator("dd.countersigned")).to_contain_text(SENIOR[1])

    doctor = browsing.new_page(viewport={"width": 1280, "height": 800})
    sign_in(doctor, DOCTOR, PASSWORD)
    doctor.goto(f"/reads/{read_id}")
    report = doctor.locator('article.read-report[data-status="final"]')
    expect(report.locator("dd.impression")).to_have_text(IMPRESSION)
    expect(report.locator("a.print-report")).to_have_attribute(
        "href", f"/reads/{read_id}/report.pdf?version=1"
    )
    pdf = doctor.request.get(f"/reads/{read_id}/report.pdf?version=1")
    assert pdf.ok
    assert pdf.headers["content-type"] == "application/pdf"
    # The report is in the patient's chart.
    doctor.goto("/patients?q=" + READ_PATIENT)
    doctor.locator("a", has_text=READ_PATIENT).first.click()
    patient_id = re.findall(r"/patients/(\d+)", doctor.url)[0]
    doctor.goto(f"/patients/{patient_id}/chart")
    entry = doctor.locator(f'.chart-reads li[data-read="{read_id}"]')
    expect(entry.locator(".read-impression")).to_have_text(IMPRESSION)
