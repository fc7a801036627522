"""The video session in chromium through Janus (skipped without the packaged janus): the
server runs with XIETONG_LIVE_SFU=janus; a session created for twelve is a janus session;
two doctors open it, join, and each sees the other's video playing — received on the
page's per-feed connection from the SFU, not from the other browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.helpers import TIMEOUT_MS, Browsing, LiveServer, sign_in
from tests.e2e.seed import Account
from tests.e2e.test_live import PLAYING, PLAYING_MS, media_browser
from tests.live.janus_server import running_janus
from tests.live.live_server import VideoServer, video_server
from tests.live.seed_live import DOCTOR, EXPERT
from xietong.identity.roles import Role

__all__ = ["media_browser"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoServer]:
    for url in running_janus(tmp_path_factory.mktemp("janus")):
        env = {"XIETONG_LIVE_SFU": "janus", "XIETONG_LIVE_JANUS_URL": url}
        yield from video_server(tmp_path_factory, env)


@pytest.fixture
def browsing(
    media_browser: Browser, server: VideoServer, request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    session = Browsing(media_browser, LiveServer(server.url, server.data_dir, server.log), request)
    try:
        yield session
    finally:
        session.close()


def _janus_session(server: VideoServer) -> int:
    created = requests.post(
        f"{server.url}/api/v1/live/sessions",
        json={
            "subject_kind": "consultation",
            "subject_id": str(server.consultation_id),
            "size": 12,
        },
        headers={"Authorization": f"Bearer {server.token(DOCTOR[0])}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert created.json()["mode"] == "janus"
    return int(created.json()["id"])


def _participant(browsing: Browsing, server: VideoServer, who: tuple[str, str], sid: int) -> Page:
    page = browsing.new_page()
    context: BrowserContext = page.context
    context.grant_permissions(["camera", "microphone"], origin=server.url)
    sign_in(page, Account(who[0], who[1], Role.APPLICANT_DOCTOR))
    page.goto(f"/live/{sid}")
    page.locator("#live-preview").evaluate(PLAYING)
    page.locator("#live-join").click()
    expect(page.locator("#live-leave")).to_be_enabled()
    return page


def test_two_doctors_see_each_other_through_janus(browsing: Browsing, server: VideoServer) -> None:
    sid = _janus_session(server)
    doctor = _participant(browsing, server, DOCTOR, sid)
    expert = _participant(browsing, server, EXPERT, sid)
    for page in (doctor, expert):
        page.set_default_timeout(PLAYING_MS)
        remote = page.locator(".live-tile:not(.live-local) video").first
        expect(remote).to_be_attached(timeout=PLAYING_MS)
        played = dict(remote.evaluate(PLAYING))
        assert played["width"] > 0
        expect(page.locator("#live-people li")).to_have_count(2)
    expert.locator("#live-mute").click()
    expect(doctor.locator("#live-people li", has_text="(")).to_have_count(1)
    expert.locator("#live-leave").click()
    expect(doctor.locator(".live-tile:not(.live-local)")).to_have_count(0, timeout=TIMEOUT_MS)


# A computer without camera or microphone: getUserMedia finds no device.
NO_DEVICES = (
    "navigator.mediaDevices.getUserMedia = () =>"
    " Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));"
)


def test_a_doctor_without_camera_watches_through_janus(
    browsing: Browsing, server: VideoServer
) -> None:
    """No camera, no microphone: the page says so, joins anyway, and receives the others'
    video through the SFU without publishing (the others receive nothing of it)."""
    sid = _janus_session(server)
    doctor = _participant(browsing, server, DOCTOR, sid)
    expert = browsing.new_page()
    expert.add_init_script(NO_DEVICES)
    sign_in(expert, Account(EXPERT[0], EXPERT[1], Role.APPLICANT_DOCTOR))
    expert.goto(f"/live/{sid}")
    expect(expert.locator("#call-status")).not_to_be_empty()
    expert.locator("#live-join").click()
    expect(expert.locator("#live-leave")).to_be_enabled()
    expert.set_default_timeout(PLAYING_MS)
    remote = expert.locator(".live-tile:not(.live-local) video").first
    expect(remote).to_be_attached(timeout=PLAYING_MS)
    assert dict(remote.evaluate(PLAYING))["width"] > 0
    for page in (doctor, expert):
        expect(page.locator("#live-people li")).to_have_count(2)
    # The watcher is listed and has a tile, but there is no feed of it to receive.
    watcher_video = doctor.locator(".live-tile:not(.live-local) video")
    expect(watcher_video).to_have_count(1)
    assert watcher_video.evaluate("(video) => video.srcObject") is None
    expert.locator("#live-leave").click()
    doctor.locator("#live-leave").click()
