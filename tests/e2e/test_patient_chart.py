"""On a phone: register a patient, photograph a paper record, find it on the chart.

The photo is a JPEG as phone cameras write it: stored sideways with EXIF orientation 6 and a
GPS position; the archive must show it upright and without metadata.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.helpers import Browsing, LiveServer, horizontal_overflow, sign_in
from tests.e2e.seed import CHART_USER

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
RESIDENT_ID = "410122195603080023"  # 1956-03-08, female, 中牟县


def _phone_photo(path: Path) -> Path:
    image = Image.new("RGB", (800, 600), (240, 240, 230))
    for x in range(100, 700):  # a dark "line of text" along the stored (sideways) width
        for y in range(280, 300):
            image.putpixel((x, y), (20, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    exif[0x8825] = {1: "N", 2: (34.0, 45.0, 0.0)}
    image.save(path, "JPEG", exif=exif, quality=85)
    return path


def test_register_photograph_and_find_on_the_chart(
    browsing: Browsing, live_server: LiveServer, tmp_path: Path
) -> None:
    page = browsing.new_page(device_scale_factor=2, **PHONE)
    sign_in(page, CHART_USER)

    page.goto("/patients/new")
    page.fill('input[name="name"]', "李桂兰")
    page.select_option('select[name="sex"]', "2")
    page.fill('input[name="birth_date"]', "1956-03-08")
    page.fill('input[name="resident_id"]', RESIDENT_ID)
    page.fill('input[name="phone"]', "13912345678")
    page.locator("form button.primary").first.click()
    expect(page).to_have_url(re.compile(r"/patients/\d+\?done=registered$"))
    patient_url = page.url.split("?")[0]
    expect(page.locator('[data-pii="resident_id"]')).to_have_text("4101**********0023")
    assert horizontal_overflow(page) == 0

    page.locator(f'a[href="{patient_url.removeprefix(live_server.url)}/chart"]').first.click()
    expect(page).to_have_url(re.compile(r"/patients/\d+/chart$"))
    page.locator('a[href$="/documents/new"]').click()

    page.select_option('select[name="doc_type"]', "admission_note")
    page.fill('input[name="title"]', "入院记录（纸质）")
    page.fill('input[name="document_date"]', "2026-11-20")
    page.set_input_files('input[name="files"]', str(_phone_photo(tmp_path / "IMG_2041.JPG")))
    assert horizontal_overflow(page) == 0
    page.locator("#document-form button.primary").click()

    expect(page).to_have_url(re.compile(r"/documents/\d+$"))
    shown = page.locator(".document-pages img").first
    expect(shown).to_be_visible()
    # Visible is laid out, not yet loaded: wait for the picture itself.
    size = shown.evaluate(
        "async img => { await img.decode(); return [img.naturalWidth, img.naturalHeight]; }"
    )
    assert size == [600, 800], "the photo is shown upright"
    stored = page.request.get(shown.get_attribute("src") or "")
    assert stored.ok
    assert not Image.open(io.BytesIO(stored.body())).getexif(), "no EXIF or GPS kept"

    page.goto(patient_url.removeprefix(live_server.url) + "/chart")
    entry = page.locator('.timeline-entry[data-kind="document"]', has_text="入院记录（纸质）")
    expect(entry).to_be_visible()
    thumb = entry.locator("img.thumb")
    expect(thumb).to_be_visible()
    thumb_size = thumb.evaluate(
        "async img => { await img.decode(); return [img.naturalWidth, img.naturalHeight]; }"
    )
    assert thumb_size[1] > thumb_size[0] > 0, "the thumbnail is upright too"
    assert horizontal_overflow(page) == 0

    page.locator('input[name="kind"][value="document"]').check()
    page.locator(".chart-filters button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"kind=document"))
    expect(entry).to_be_visible()
