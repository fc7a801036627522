"""The image viewer in a browser: a 120-slice 512x512 CT opened from the patient's chart is
drawn (the time to it is recorded; `make bench-viewer` measures it against the 1 s target,
since timings belong in benchmarks, not in tests); wheel, keys and drag scroll; drag and
presets change the window; MPR draws coronal and sagittal planes; length and angle
measurements; cine; tags; and on a phone (390x844, touch) one finger scrolls and, in W/L
mode, changes the window."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from playwright.sync_api import CDPSession, Page, expect

from tests.e2e.conftest import _server_env
from tests.e2e.helpers import ROOT, Browsing, LiveServer, horizontal_overflow, sign_in
from tests.e2e.seed_viewer import SLICES, VIEWER
from tests.e2e.viewer_steps import LIT, centre, drag, state, until

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def study(live_server: LiveServer) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.seed_viewer"],
        env=_server_env(live_server.data_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"seeding the CT failed:\n{done.stdout}\n{done.stderr}")
    ids: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


def wait_loaded(page: Page) -> None:
    expect(page.locator("#viewer")).to_have_attribute("data-loaded", str(SLICES))


def test_open_scroll_window_mpr_measure(
    browsing: Browsing, live_server: LiveServer, study: dict[str, int]
) -> None:
    page = browsing.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, VIEWER)
    page.goto(f"/patients/{study['patient_id']}/chart")
    link = page.locator(f'#studies a[href="/imaging/studies/{study["study_id"]}/view"]')
    expect(link).to_be_visible()
    link.click()

    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("data-ready", "true")
    first_ms = float(viewer.get_attribute("data-first-image-ms") or "nan")
    assert 0 < first_ms < 60_000, first_ms  # recorded; its speed is bench/viewer.py's
    s = state(page)
    assert (s["slices"], s["slice"], s["wc"], s["ww"]) == (str(SLICES), "60", "40", "400")
    assert page.evaluate(LIT, '[data-view="axial"] canvas') > 0.2
    expect(page.locator(".viewer-thumb img")).to_have_count(1)

    # Scrolling: the wheel, the keys, a drag.
    axial = centre(page, '[data-view="axial"] canvas')
    page.mouse.move(*axial)
    page.mouse.wheel(0, 120)
    expect(viewer).to_have_attribute("data-slice", "61")
    page.mouse.wheel(0, -120)
    page.mouse.wheel(0, -120)
    expect(viewer).to_have_attribute("data-slice", "59")
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    expect(viewer).to_have_attribute("data-slice", "62")
    page.keyboard.press("PageUp")
    expect(viewer).to_have_attribute("data-slice", "52")
    drag(page, axial, 0, 60)
    expect(viewer).to_have_attribute("data-slice", "62")

    # Window/level: a drag in W/L mode, a right drag, a preset.
    page.locator('.viewer-modes button[data-mode="wl"]').click()
    expect(viewer).to_have_attribute("data-mode", "wl")
    drag(page, axial, 80, 40)
    until(page, "d.ww > 400 && d.wc > 40")  # dragged right: wider; down: a higher level
    s = state(page)
    drag(page, axial, -50, -30, button="right")  # a right drag windows in any mode
    until(page, f"d.wc < {s['wc']} && d.ww < {s['ww']}")
    page.locator("#viewer-preset").select_option("-600,1500")  # lung
    expect(viewer).to_have_attribute("data-wc", "-600")
    expect(viewer).to_have_attribute("data-ww", "1500")
    page.locator("#viewer-preset").select_option("40,400")  # mediastinum
    expect(viewer).to_have_attribute("data-wc", "40")
    expect(viewer).to_have_attribute("data-ww", "400")

    # Invert, zoom (ctrl + wheel), reset.
    page.locator("#viewer-invert").click()
    expect(viewer).to_have_attribute("data-invert", "true")
    page.mouse.move(*axial)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -200)
    page.keyboard.up("Control")
    until(page, "d.zoom > 1.5")
    page.locator("#viewer-reset").click()
    expect(viewer).to_have_attribute("data-invert", "false")
    expect(viewer).to_have_attribute("data-zoom", "1.000")

    # MPR once every slice is in: coronal and sagittal planes are drawn.
    wait_loaded(page)
    page.locator("#viewer-layout").click()
    expect(viewer).to_have_attribute("data-layout", "mpr")
    for view in ("coronal", "sagittal"):
        expect(page.locator(f'[data-view="{view}"] canvas')).to_be_visible()
        assert page.evaluate(LIT, f'[data-view="{view}"] canvas') > 0.1, view
    sagittal = centre(page, '[data-view="sagittal"] canvas')
    page.mouse.move(*sagittal)
    page.mouse.wheel(0, 120)
    expect(viewer).to_have_attribute("data-col", "257")
    page.locator("#viewer-mip").click()
    expect(viewer).to_have_attribute("data-mip", "true")
    assert page.evaluate(LIT, '[data-view="coronal"] canvas') > 0.1
    page.locator("#viewer-mip").click()
    page.locator("#viewer-layout").click()
    expect(viewer).to_have_attribute("data-layout", "stack")

    # A length of 200 CSS pixels, in millimetres from the pixel spacing.
    page.locator('.viewer-modes button[data-mode="length"]').click()
    axial = centre(page, '[data-view="axial"] canvas')
    drag(page, (axial[0] - 100, axial[1]), 200, 0)
    text = viewer.get_attribute("data-measure") or ""
    assert text.endswith(" mm"), text
    box = page.locator('[data-view="axial"] canvas').bounding_box()
    assert box is not None
    expected = 200 / (min(box["width"], box["height"]) / 360.0)  # field of view: 360 mm
    assert float(text.split()[0]) == pytest.approx(expected, rel=0.02)

    # An angle: A → B (the vertex), then C.
    page.locator('.viewer-modes button[data-mode="angle"]').click()
    drag(page, (axial[0] - 100, axial[1]), 100, 0)
    page.mouse.click(axial[0], axial[1] - 100)
    expect(viewer).to_have_attribute("data-measure", "90.0°")

    # Cine plays and pauses.
    start = state(page)["slice"]
    page.locator("#viewer-cine").click()
    expect(viewer).to_have_attribute("data-cine", "true")
    expect(viewer).not_to_have_attribute("data-slice", start)
    page.locator("#viewer-cine").click()
    expect(viewer).to_have_attribute("data-cine", "false")

    # The DICOM tags of the current image.
    page.locator("#viewer-tags-toggle").click()
    row = page.locator("#viewer-tags tbody tr", has_text="PatientName")
    expect(row).to_contain_text("冯^体模")
    page.locator("#viewer-tags-filter").fill("Rescale")
    expect(page.locator("#viewer-tags tbody tr:visible")).to_have_count(3)
    shown = viewer.get_attribute("data-tags-instance")
    page.locator("#viewer-slider").fill("10")  # the open panel follows the image
    expect(viewer).to_have_attribute("data-slice", "10")
    expect(viewer).not_to_have_attribute("data-tags-instance", shown or "")


def touch(cdp: CDPSession, kind: str, points: list[tuple[float, float]]) -> None:
    cdp.send(
        "Input.dispatchTouchEvent",
        {
            "type": kind,
            "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)],
        },
    )


def swipe(cdp: CDPSession, start: tuple[float, float], dx: float, dy: float) -> None:
    touch(cdp, "touchStart", [start])
    for step in range(1, 9):
        touch(cdp, "touchMove", [(start[0] + dx * step / 8, start[1] + dy * step / 8)])
    touch(cdp, "touchEnd", [])


def tap(cdp: CDPSession, at: tuple[float, float]) -> None:
    touch(cdp, "touchStart", [at])
    touch(cdp, "touchEnd", [])


def test_phone_scrolls_and_windows_by_touch(
    browsing: Browsing, live_server: LiveServer, study: dict[str, int]
) -> None:
    page = browsing.new_page(device_scale_factor=2, **PHONE)
    sign_in(page, VIEWER)
    page.goto(f"/imaging/studies/{study['study_id']}/view")
    viewer = page.locator("#viewer")
    expect(viewer).to_have_attribute("data-ready", "true")
    assert horizontal_overflow(page) == 0
    canvas = page.locator('[data-view="axial"] canvas')
    expect(canvas).to_be_in_viewport()
    cdp = page.context.new_cdp_session(page)
    middle = centre(page, '[data-view="axial"] canvas')

    swipe(cdp, middle, 0, 90)  # one finger down: later slices
    until(page, "d.slice >= 70")

    # Chrome swallows a tap that follows a swipe at once (it takes it for the tap that
    # stops a fling); a person pauses longer than this anyway.
    page.wait_for_timeout(500)
    tap(cdp, centre(page, '.viewer-modes button[data-mode="wl"]'))
    expect(viewer).to_have_attribute("data-mode", "wl")
    swipe(cdp, middle, 60, 40)
    until(page, "d.ww > 400 && d.wc > 40")  # dragged right: wider; down: a higher level

    # Two fingers apart: zoom in.
    a, b = (middle[0] - 40, middle[1]), (middle[0] + 40, middle[1])
    touch(cdp, "touchStart", [a, b])
    for step in range(1, 6):
        touch(cdp, "touchMove", [(a[0] - 12 * step, a[1]), (b[0] + 12 * step, b[1])])
    touch(cdp, "touchEnd", [])
    until(page, "d.zoom > 1.3")
    page.locator("#viewer-preset").select_option("400,1800")  # bone
    expect(viewer).to_have_attribute("data-wc", "400")
    wait_loaded(page)
    tap(cdp, centre(page, "#viewer-layout"))
    expect(page.locator('[data-view="sagittal"] canvas')).to_be_visible()
    assert horizontal_overflow(page) == 0
