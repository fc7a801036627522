"""Time to the first image in the viewer, against the browser showing one server-rendered
JPEG of the same slice.

The issue's target: the first image of a 512×512 CT on screen within 1 s on loopback. This
loads the demo network (whose synthetic CT has 100 slices of 512×512) into a fresh data
folder, serves it, and opens the study in Debian's chromium (Playwright) as the county
hospital's doctor, each round in a fresh browser context (nothing cached). The viewer's
figure is ``data-first-image-ms``: ``performance.now()`` when the first slice is drawn,
counted from the start of the navigation (page, scripts, manifest, pixels, drawing). The
reference, measured in the same run, is the browser navigating straight to WADO-RS
``/rendered`` of the middle slice (``loadEventEnd`` of that navigation): one request, one
JPEG decoded by the browser, no page and no script.

    make bench-viewer                  # 10 rounds
    .venv/bin/python bench/viewer.py --rounds 20
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, sync_playwright

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
USERNAME, PASSWORD = "doctor.county", "Xietong@2026"
TARGET_MS = 1000.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIETONG_")}
    return {
        **env,
        "XIETONG_DATA_DIR": str(data),
        "XIETONG_DIMSE_ENABLED": "false",
        "XIETONG_SECURITY_SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
    }


def load_demo(env: dict[str, str]) -> float:
    started = time.perf_counter()
    for command in (["migrate"], ["demo-data"]):
        subprocess.run(  # noqa: S603
            [str(BIN / "xietong"), *command], env=env, check=True, capture_output=True
        )
    return time.perf_counter() - started


def demo_ct(data: Path) -> tuple[int, str]:
    """The demo CT's row id and the WADO-RS path of its middle slice."""
    with sqlite3.connect(data / "xietong.sqlite3") as db:
        study_id, study_uid, count = db.execute(
            "SELECT id, study_uid, instance_count FROM imaging_study"
            " ORDER BY instance_count DESC LIMIT 1"
        ).fetchone()
        series_uid, sop_uid = db.execute(
            "SELECT s.series_uid, i.sop_instance_uid FROM imaging_instance i"
            " JOIN imaging_series s ON s.id = i.series_id WHERE i.study_id = ?"
            " ORDER BY i.instance_number LIMIT 1 OFFSET ?",
            (study_id, count // 2),
        ).fetchone()
    path = f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/rendered"
    return study_id, path


def wait_up(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not come up")


def signed_in_state(browser: Browser, base: str) -> str:
    context = browser.new_context(base_url=base)
    page = context.new_page()
    page.goto("/login")
    form = page.locator('form[action="/login"]')
    form.locator('input[name="username"]').fill(USERNAME)
    form.locator('input[name="password"]').fill(PASSWORD)
    with page.expect_navigation():
        form.locator('button[type="submit"]').click()
    state = Path(tempfile.mkstemp(suffix=".json")[1])
    context.storage_state(path=str(state))
    context.close()
    return str(state)


def viewer_ms(browser: Browser, base: str, state: str, study_id: int) -> float:
    context = browser.new_context(base_url=base, storage_state=state)
    page = context.new_page()
    page.goto(f"/imaging/studies/{study_id}/view")
    page.wait_for_selector('#viewer[data-ready="true"]', timeout=30_000)
    value = page.locator("#viewer").get_attribute("data-first-image-ms")
    context.close()
    return float(value or "nan")


def rendered_ms(browser: Browser, base: str, state: str, path: str) -> float:
    context = browser.new_context(base_url=base, storage_state=state)
    page = context.new_page()
    answer = page.goto(path)
    if answer is None or answer.status != 200:
        raise RuntimeError(f"{path}: {answer.status if answer else 'no answer'}")
    page.wait_for_load_state("load")
    ms: float = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
    context.close()
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="xietong-bench-viewer-") as folder:
        data = Path(folder)
        env = environment(data)
        print(f"demo network with its CT loaded in {load_demo(env):.1f} s")
        study_id, rendered = demo_ct(data)
        port = free_port()
        server = subprocess.Popen(  # noqa: S603
            [str(BIN / "xietong"), "serve", "--port", str(port), "--no-dicom"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                state = signed_in_state(browser, base)
                # One of each first: the server's first request builds its route table.
                viewer_ms(browser, base, state, study_id)
                rendered_ms(browser, base, state, rendered)
                ours, reference = [], []
                for _ in range(args.rounds):
                    ours.append(viewer_ms(browser, base, state, study_id))
                    reference.append(rendered_ms(browser, base, state, rendered))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
    report(ours, reference)


def report(ours: list[float], reference: list[float]) -> None:
    load = os.getloadavg()[0]
    print(f"{len(ours)} rounds, fresh browser context each, load average {load:.1f}")
    print(f"{'':44} {'median':>8} {'max':>8}")
    print(
        f"{'viewer: first CT slice drawn (ms)':44} {statistics.median(ours):8.0f} {max(ours):8.0f}"
    )
    print(
        f"{'reference: one rendered JPEG, no page (ms)':44} "
        f"{statistics.median(reference):8.0f} {max(reference):8.0f}"
    )
    ratio = statistics.median(ours) / statistics.median(reference)
    verdict = "met" if statistics.median(ours) <= TARGET_MS else "MISSED"
    print(f"ratio viewer / reference: {ratio:.2f}; target {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
