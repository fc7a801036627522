"""Uploading studies from the browser: a folder and a zip on a phone, a connection that
breaks mid-file, and a reload that continues where the upload stopped."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, Request, Route, expect
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.e2e.helpers import Browsing, horizontal_overflow, sign_in
from tests.e2e.seed import UPLOADER
from tests.imaging.conftest import sample

CHUNK_URL = re.compile(r"/api/v1/imaging/uploads/[0-9a-f]{32}$")
# The live server lives for the whole session: a sample another test stored already is
# "already stored" for this institution, which is as good.
ACCEPTED = (
    '#upload-table tbody tr[data-outcome="stored"],'
    ' #upload-table tbody tr[data-outcome="already_stored"]'
)


def big_ct(path: Path) -> Path:
    """A 1024×1280 CT slice (2.5 MiB: three 1 MiB chunks) with fresh UIDs."""
    ds = dcmread(io.BytesIO(sample("CT_small.dcm")))
    ds.Rows, ds.Columns = 1024, 1280
    pixels = np.random.default_rng(6).integers(0, 2000, (1024, 1280), dtype=np.int16)
    ds.PixelData = pixels.tobytes()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return path


def open_upload_page(page: Page) -> None:
    sign_in(page, UPLOADER)
    page.goto("/imaging/upload")
    expect(page.locator("#imaging-upload h1")).to_be_visible()


def test_folder_and_zip_on_a_phone(browsing: Browsing, tmp_path: Path) -> None:
    page = browsing.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    open_upload_page(page)
    folder = tmp_path / "CT检查"
    folder.mkdir()
    for name in ("CT_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm"):
        (folder / name).write_bytes(sample(name))
    (folder / "notes.txt").write_text("not an image")
    page.locator("#upload-folder").set_input_files(folder)
    expect(page.locator("#upload-queue li.done")).to_have_count(4)
    expect(page.locator(ACCEPTED)).to_have_count(3)
    notes = page.locator('#upload-table tbody tr[data-outcome="refused"]')
    expect(notes).to_contain_text("notes.txt")

    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("MR/MR_small_implicit.dcm", sample("MR_small_implicit.dcm"))
        zf.writestr("MR/image_dfl.dcm", sample("image_dfl.dcm"))
        zf.writestr("DICOMDIR", b"\0" * 128 + b"DICM")
        zf.writestr("readme.txt", "exported by the CD burner")
    page.locator("#upload-files").set_input_files(archive)
    expect(page.locator("#upload-queue li.done")).to_have_count(5)
    expect(page.locator(ACCEPTED)).to_have_count(5)
    expect(page.locator('#upload-table tbody tr[data-outcome="skipped"]')).to_have_count(2)
    expect(page.locator("#upload-table tbody tr", has_text="study.zip › DICOMDIR")).to_be_visible()
    expect(page.locator("#upload-studies li")).to_have_count(5)
    assert horizontal_overflow(page) == 0
    # The menu leads here for clinical staff.
    page.goto("/")
    page.locator("[data-toggle=mainnav]").click()
    expect(page.locator('#mainnav a[href="/imaging/upload"]')).to_be_visible()


def test_broken_connection_resumes(browsing: Browsing, tmp_path: Path) -> None:
    page = browsing.new_page(viewport={"width": 1280, "height": 800})
    open_upload_page(page)
    patches: list[str] = []

    def flaky(route: Route, request: Request) -> None:
        if request.method != "PATCH":
            route.continue_()
            return
        patches.append(request.headers.get("upload-offset", ""))
        if len(patches) == 2:
            route.abort("connectionreset")  # the line drops during the second chunk
        else:
            route.continue_()

    page.route(CHUNK_URL, flaky)
    page.locator("#upload-files").set_input_files(big_ct(tmp_path / "big.dcm"))
    expect(page.locator("#upload-queue li.done")).to_have_count(1, timeout=60_000)
    expect(page.locator('#upload-table tbody tr[data-outcome="stored"]')).to_have_count(1)
    # The chunk that broke was sent again from the same offset, after asking the server.
    assert patches[:3] == ["0", "1048576", "1048576"], patches
    assert len(patches) == 4


def test_reload_continues_the_upload(browsing: Browsing, tmp_path: Path) -> None:
    page = browsing.new_page(viewport={"width": 1280, "height": 800})
    open_upload_page(page)
    big = big_ct(tmp_path / "resume.dcm")
    offsets: list[str] = []

    def one_chunk_then_offline(route: Route, request: Request) -> None:
        if request.method != "PATCH":
            route.continue_()
            return
        offsets.append(request.headers.get("upload-offset", ""))
        if len(offsets) == 1:
            route.continue_()
        else:
            route.abort("internetdisconnected")

    page.route(CHUNK_URL, one_chunk_then_offline)
    page.locator("#upload-files").set_input_files(big)
    expect(page.locator('#upload-queue li[data-state="retrying"]')).to_have_count(1)
    page.unroute(CHUNK_URL)
    sent: list[str] = []
    page.on(
        "request",
        lambda r: sent.append(r.headers.get("upload-offset", "")) if r.method == "PATCH" else None,
    )
    page.reload()
    expect(page.locator("#upload-unfinished")).to_be_visible()
    page.locator("#upload-files").set_input_files(big)
    expect(page.locator("#upload-queue li.done")).to_have_count(1, timeout=60_000)
    expect(page.locator('#upload-table tbody tr[data-outcome="stored"]')).to_have_count(1)
    assert sent[0] == "1048576", sent  # continued after the chunk the server already had
